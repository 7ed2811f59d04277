/// A request described by plain values rather than received from a socket: what `fulcrum route`
/// and route explanations evaluate.
public struct DescribedRequest: RoutingRequest, Sendable {
    public var method: String
    public var path: Substring
    public var query: Substring
    public var clientIP: Substring
    /// Headers in order; names compared case-insensitively.
    public var headers: [(name: String, value: String)]

    /// The authority of an absolute-form target, which routes in place of `Host`.
    public var authority: Substring?
    /// The body, for routes with a body condition; `nil` when none is given.
    public var body: [UInt8]?

    /// - Parameter target: the request target, path and optional `?query`, normalised as the data
    ///   plane does (``RequestTarget``).
    /// - Throws: the reason the data plane would refuse the target with 400.
    public init(
        method: String = "GET", target: String, headers: [(name: String, value: String)] = [], clientIP: String = "127.0.0.1",
        encodedSlashes: RequestTarget.EncodedSlashes = .refuse
    ) throws(RequestTargetError) {
        self.method = method
        let parsed = try RequestTarget(parsing: target[...], encodedSlashes: encodedSlashes)
        path = parsed.path
        query = parsed.query
        authority = parsed.authority
        self.headers = headers
        self.clientIP = clientIP[...]
    }

    public var host: Substring? {
        if let authority { return RequestTarget.hostWithoutPort(authority) }
        return header("host").map(RequestTarget.hostWithoutPort)
    }

    public func header(_ name: String) -> Substring? {
        headers.first { $0.name.lowercased() == name.lowercased() }.map { $0.value[...] }
    }

    public func anyHeader(_ name: String, where test: (Substring) -> Bool) -> Bool {
        headers.contains { $0.name.lowercased() == name.lowercased() && test($0.value[...]) }
    }
}
