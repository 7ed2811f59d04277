import FulcrumCore

/// A refused admin request: the HTTP status, a machine-readable code, a precise message and, for an
/// invalid configuration, every issue with its path. Sent as
/// `{"error": {"code": ..., "message": ..., "issues": [...]}}`.
public struct AdminError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var issues: [ConfigIssue]
    /// The active version, for conflicts.
    public var activeVersion: Int?
    /// Seconds before trying again, for 429 (sent as `Retry-After`).
    public var retryAfter: Int?

    init(status: Int, code: String, message: String, issues: [ConfigIssue] = [], activeVersion: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.issues = issues
        self.activeVersion = activeVersion
    }

    public var description: String {
        var text = "\(status) \(code): \(message)"
        for issue in issues { text += "\n  \(issue)" }
        return text
    }

    static func tooManyFailedAuthentications(retryAfter: Int) -> AdminError {
        var error = AdminError(
            status: 429, code: "too_many_failed_authentications",
            message: "too many failed authentications from this address; try again in \(retryAfter) s")
        error.retryAfter = retryAfter
        return error
    }
    static func badRequest(_ message: String) -> AdminError { AdminError(status: 400, code: "bad_request", message: message) }
    static func invalidJSON(_ message: String) -> AdminError { AdminError(status: 400, code: "invalid_json", message: message) }
    static let unauthorized = AdminError(
        status: 401, code: "unauthorized", message: "a valid token is required: send 'Authorization: Bearer TOKEN'")
    static let forbidden = AdminError(status: 403, code: "forbidden", message: "this token has the viewer role; changes need an admin token")
    static func notFound(_ message: String) -> AdminError { AdminError(status: 404, code: "not_found", message: message) }
    static func methodNotAllowed(_ allowed: [String]) -> AdminError {
        AdminError(status: 405, code: "method_not_allowed", message: "allowed methods: \(allowed.joined(separator: ", "))")
    }
    static func exists(_ message: String) -> AdminError { AdminError(status: 409, code: "already_exists", message: message) }
    static func versionConflict(active: Int?) -> AdminError {
        AdminError(
            status: 412, code: "version_conflict",
            message: "the configuration changed: the active version is \(active.map(String.init) ?? "none"); "
                + "reload it, reapply your change and send If-Match with the new version",
            activeVersion: active)
    }
    static let payloadTooLarge = AdminError(status: 413, code: "payload_too_large", message: "the body is larger than 1 MiB")
    static func unsupportedMediaType(_ type: String) -> AdminError {
        AdminError(status: 415, code: "unsupported_media_type", message: "the body must be application/json, not \(type)")
    }
    static func invalidConfig(_ error: ConfigError) -> AdminError {
        AdminError(status: 422, code: "invalid_config", message: "the change makes the configuration invalid; nothing was applied", issues: error.issues)
    }
    static func cannotApply(_ message: String) -> AdminError {
        AdminError(status: 422, code: "cannot_apply", message: "the configuration is valid but cannot be applied: \(message); nothing was applied")
    }
    static let preconditionRequired = AdminError(
        status: 428, code: "precondition_required",
        message: "changes need 'If-Match: \"VERSION\"' (the version you read) or 'If-Match: *' to apply whatever the active version is")
    static func internalError(_ message: String) -> AdminError { AdminError(status: 500, code: "internal_error", message: message) }
    /// The store cannot be read or written (a database that is down or unreachable): the data
    /// plane goes on serving what it has, reads answered from memory still work, and changes wait.
    static func storeUnavailable(_ what: String, _ error: any Error) -> AdminError {
        AdminError(
            status: 503, code: "store_unavailable",
            message: "\(what): the store cannot be reached (\(error)); traffic is served as before, and changes are refused until it is back")
    }

    /// The error as a JSON-ready document.
    var document: ConfigDocument {
        var error = ConfigDocument.mapping([.init("code", .string(code)), .init("message", .string(message))])
        if !issues.isEmpty { error["issues"] = .list(issues.map(\.document)) }
        if let activeVersion { error["active_version"] = .int(activeVersion) }
        return .mapping([.init("error", error)])
    }
}

extension ConfigIssue {
    /// `{"path": ..., "line": ..., "message": ...}`.
    var document: ConfigDocument {
        .mapping([
            .init("path", .string(path)), .init("line", line.map(ConfigDocument.int) ?? .null), .init("message", .string(message)),
        ])
    }
}
