/// A request described by plain values rather than received from a socket: what `fulcrum route`
/// and route explanations evaluate.
public struct DescribedRequest: RoutingRequest, Sendable {
    public var method: String
    public var path: Substring
    public var query: Substring
    public var clientIP: Substring
    /// Headers in order; names compared case-insensitively.
    public var headers: [(name: String, value: String)]

    /// - Parameter target: the request target, path and optional `?query`.
    public init(method: String = "GET", target: String, headers: [(name: String, value: String)] = [], clientIP: String = "127.0.0.1") {
        self.method = method
        if let question = target.firstIndex(of: "?") {
            path = target[..<question]
            query = target[target.index(after: question)...]
        } else {
            path = target[...]
            query = ""
        }
        self.headers = headers
        self.clientIP = clientIP[...]
    }

    public var host: Substring? {
        guard let value = header("host") else { return nil }
        return value.firstIndex(of: ":").map { value[..<$0] } ?? value
    }

    public func header(_ name: String) -> Substring? {
        headers.first { $0.name.lowercased() == name.lowercased() }.map { $0.value[...] }
    }
}
