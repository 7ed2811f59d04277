import FulcrumHTTP1
import Logging
import NIOCore

/// The data plane's loggers: operational events, and the access log (one line per request).
public struct ProxyLogs: Sendable {
    public var events: Logger
    /// Where access-log lines go when the configuration's `access_log` is on; `nil` writes none.
    public var access: Logger?

    public init(events: Logger = Logger(label: "fulcrum"), access: Logger? = Logger(label: "fulcrum.access")) {
        self.events = events
        self.access = access
    }

    /// Writes one access-log line: client, method, target, status, response body bytes, duration,
    /// route, node, request ID and, after a retry, the node that failed (the log handler adds the time).
    func logAccess(
        clientIP: String, head: RequestHead, status: UInt, bytes: Int, start: NIODeadline,
        route: String, node: String, requestID: String, retriedFrom: String? = nil
    ) {
        guard let access else { return }
        let micros = (NIODeadline.now() - start).nanoseconds / 1000
        let millis = "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
        let retry = retriedFrom.map { " retried_from=\($0)" } ?? ""
        access.info("\(clientIP) \"\(head.method) \(head.target)\" \(status) \(bytes) \(millis)ms route=\(route) node=\(node) id=\(requestID)\(retry)")
    }
}
