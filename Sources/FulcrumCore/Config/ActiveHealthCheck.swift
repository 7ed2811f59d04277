/// Active health checking of a service's nodes: how to probe and how to judge the answers.
public struct ActiveHealthCheck: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// An HTTP request whose status (and optionally body) is checked.
        case http
        /// A TCP connection that must open.
        case tcp
    }

    public var kind: Kind = .http
    /// Time between two probes of one node (each probe is shifted by up to 10 % of jitter).
    public var interval: Duration = .seconds(5)
    /// Time a probe may take, connect included.
    public var timeout: Duration = .seconds(1)
    public var method: String = "GET"
    public var path: String = "/"
    /// The Host header; the node's host and port when not set.
    public var host: String?
    public var headers: [ValueCondition] = []
    /// A raw request sent instead of one built from method, path, host and headers.
    public var rawRequest: String?
    /// Statuses that count as healthy.
    public var expectedStatuses: [ClosedRange<Int>] = [200...399]
    /// Text the response body must contain, when set.
    public var bodyContains: String?
    public var thresholds = ProbeHealth.Thresholds()

    public init() {}

    /// Whether `status` is one of the expected statuses.
    public func accepts(status: Int) -> Bool {
        expectedStatuses.contains { $0.contains(status) }
    }

    /// The bytes of one HTTP probe to a node at `host:port`.
    public func requestText(nodeHost: String, nodePort: Int) -> String {
        if let rawRequest {
            let normalized = rawRequest.replacingLineEndings()
            return normalized.hasSuffix("\r\n\r\n") ? normalized : normalized + (normalized.hasSuffix("\r\n") ? "\r\n" : "\r\n\r\n")
        }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host ?? "\(nodeHost):\(nodePort)")\r\nUser-Agent: fulcrum-health-check\r\nConnection: close\r\n"
        for header in headers { text += "\(header.name): \(header.values[0])\r\n" }
        return text + "\r\n"
    }
}

extension String {
    /// `\n` line endings turned into `\r\n` (raw requests are usually written in YAML with `\n`).
    func replacingLineEndings() -> String {
        // "\r\n" is a single Character in Swift, so only lone "\n" reaches the first branch
        var result = ""
        for character in self {
            if character == "\n" { result += "\r\n" } else { result.append(character) }
        }
        return result
    }
}
