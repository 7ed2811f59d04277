/// Why a route's conditions reject a request; used on the hot path (as a yes/no) and by
/// route explanations (as a reason).
public enum RouteMismatch: Sendable, Equatable, CustomStringConvertible {
    case path
    case host
    case method
    case header(String)
    case query(String)
    case cookie(String)
    /// The body condition does not hold.
    case body
    /// The route has a body condition and no body was given to the explanation.
    case bodyNotGiven

    public var description: String {
        switch self {
        case .path: return "path does not match"
        case .host: return "host does not match"
        case .method: return "method not accepted"
        case .header(let name): return "header \(name) missing or not an accepted value"
        case .query(let name): return "query parameter \(name) missing or not an accepted value"
        case .cookie(let name): return "cookie \(name) missing or not an accepted value"
        case .body: return "body does not match"
        case .bodyNotGiven: return "the route looks at the body, and none was given"
        }
    }
}

/// A route's non-path conditions, prepared once for matching (hosts lower-cased, wildcards split).
struct RoutePredicates: Sendable {
    private let exactHosts: [String]
    private let hostSuffixes: [String]  // "*.example.com" stored as ".example.com"
    private let methods: [String]
    private let headers: [ValueCondition]
    private let query: [ValueCondition]
    private let cookies: [ValueCondition]

    init(_ match: RouteMatch) {
        exactHosts = match.hosts.filter { !$0.hasPrefix("*.") }
        hostSuffixes = match.hosts.filter { $0.hasPrefix("*.") }.map { String($0.dropFirst()) }
        methods = match.methods
        headers = match.headers
        query = match.query
        cookies = match.cookies
    }

    func mismatch<Request: RoutingRequest>(_ request: Request) -> RouteMismatch? {
        if !exactHosts.isEmpty || !hostSuffixes.isEmpty {
            guard let host = request.host, hostMatches(host) else { return .host }
        }
        if !methods.isEmpty, !methods.contains(request.method) { return .method }
        for condition in headers {
            guard let value = request.header(condition.name), condition.values.contains(where: { value == $0 }) else {
                return .header(condition.name)
            }
        }
        for condition in query {
            guard let raw = request.queryParameter(condition.name),
                condition.values.contains(where: { QueryString.decodedValue(raw, equals: $0) })
            else { return .query(condition.name) }
        }
        for condition in cookies {
            guard let value = request.cookie(condition.name), condition.values.contains(where: { value == $0 }) else {
                return .cookie(condition.name)
            }
        }
        return nil
    }

    private func hostMatches(_ host: Substring) -> Bool {
        for candidate in exactHosts where Self.equalsIgnoringCase(host, candidate) { return true }
        for suffix in hostSuffixes where host.utf8.count > suffix.utf8.count {
            let tail = host.utf8.suffix(suffix.utf8.count)
            if zip(tail, suffix.utf8).allSatisfy({ Self.lower($0) == $1 }) { return true }
        }
        return false
    }

    private static func equalsIgnoringCase(_ a: Substring, _ lowered: String) -> Bool {
        a.utf8.count == lowered.utf8.count && zip(a.utf8, lowered.utf8).allSatisfy { lower($0) == $1 }
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
