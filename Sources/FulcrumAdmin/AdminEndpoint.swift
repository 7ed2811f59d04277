import FulcrumCore
import FulcrumStore

/// One operation of the admin API: a method and a path template such as
/// `/api/v1/services/{service}`, the role it needs and its handler.
struct AdminEndpoint: Sendable {
    enum Access: Sendable {
        /// No token needed (liveness only).
        case open
        /// Any valid token.
        case viewer
        /// An admin token.
        case admin
        /// An admin token and `If-Match`: the operation changes the configuration.
        case configChange
    }

    typealias Handler = @Sendable (AdminCall) async throws(AdminError) -> AdminReply

    /// A query parameter, for the OpenAPI document.
    struct QueryParameter: Sendable {
        var name: String
        /// `string`, `integer` or `boolean`.
        var type: String
        var description: String
    }

    let method: String
    let template: PathTemplate
    let access: Access
    /// One line for the OpenAPI document.
    let summary: String
    /// The schema (an OpenAPI component name) of the JSON body, if the operation takes one.
    let body: String?
    /// The schema of the answer and its status.
    let returns: String
    let status: Int
    let query: [QueryParameter]
    let handler: Handler

    init(
        _ method: String, _ template: String, _ access: Access, _ summary: String, body: String? = nil, returns: String,
        status: Int = 200, query: [QueryParameter] = [], handler: @escaping Handler
    ) {
        self.method = method
        self.template = PathTemplate(template)
        self.access = access
        self.summary = summary
        self.body = body
        self.returns = returns
        self.status = status
        self.query = access == .configChange ? query + [.message] : query
        self.handler = handler
    }
}

extension AdminEndpoint.QueryParameter {
    static let message = Self(name: "message", type: "string", description: "Why the change is made (kept with the version and in the audit log).")
}

/// A path with `{name}` segments that match any one segment.
struct PathTemplate: Sendable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    let segments: [Segment]
    let description: String

    init(_ text: String) {
        description = text
        segments = text.split(separator: "/").map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
    }

    /// The parameters when `path` (already split and percent-decoded) fits the template.
    func match(_ path: [String]) -> [String: String]? {
        guard path.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            switch segment {
            case .literal(let literal): if literal != part { return nil }
            case .parameter(let name): parameters[name] = part
            }
        }
        return parameters
    }

    var parameterNames: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { return name } else { return nil } }
    }
}

/// Everything a handler needs to know about one request.
struct AdminCall: Sendable {
    /// `If-Match` as sent.
    enum Precondition: Sendable, Equatable {
        case none
        case any
        case version(Int)
    }

    let method: String
    let path: String
    let parameters: [String: String]
    let query: [String: String]
    /// The parsed JSON body, if the request had one.
    let body: ConfigDocument?
    let token: StoredToken?
    let client: String
    let precondition: Precondition
    let endpoint: AdminEndpoint

    func parameter(_ name: String) -> String { parameters[name] ?? "" }

    /// The body, which this operation requires.
    func requireBody() throws(AdminError) -> ConfigDocument {
        guard let body else { throw .badRequest("this operation needs a JSON body") }
        return body
    }

    /// The body as a JSON object.
    func requireObject() throws(AdminError) -> ConfigDocument {
        let body = try requireBody()
        guard case .mapping = body else { throw .badRequest("the body must be a JSON object, not \(body.kindName)") }
        return body
    }

    /// A whole-number query parameter.
    func intQuery(_ name: String, default value: Int? = nil, in range: ClosedRange<Int>) throws(AdminError) -> Int? {
        guard let text = query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw .badRequest("query parameter '\(name)' must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// The change request a configuration change is recorded as.
    func changeRequest(target: String) -> ConfigController.ChangeRequest {
        let expected: Int? = if case .version(let number) = precondition { number } else { nil }
        return ConfigController.ChangeRequest(
            actor: token?.name ?? "-", client: client, source: .api, operation: "\(method) \(path)", target: target,
            message: query["message"] ?? "", expected: expected)
    }
}

/// A handler's answer: status, JSON body (or text) and the configuration version for `ETag`.
struct AdminReply: Sendable {
    enum Body: Sendable {
        case json(ConfigDocument)
        case text(String, contentType: String)
        case empty
    }

    var status: Int
    var body: Body
    var version: Int?

    static func json(_ document: ConfigDocument, status: Int = 200, version: Int? = nil) -> AdminReply {
        AdminReply(status: status, body: .json(document), version: version)
    }
}
