import Foundation
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import Logging
import Synchronization

/// The admin tokens as last read from the store: while the store cannot be reached, tokens are
/// checked against these, so that reads answered from memory keep working through an outage (a
/// token revoked meanwhile stays valid on this instance until the store is back). After a failed
/// read the store is not asked again for ``retryAfter``: a store that does not answer takes
/// seconds to fail, which every request would otherwise wait.
final class LastKnownTokens: Sendable {
    private struct Known {
        var tokens: [StoredToken]?
        var failedAt: ContinuousClock.Instant?
    }

    private let known = Mutex(Known())
    static let retryAfter: Duration = .seconds(5)

    /// The store's tokens, or the last ones read when the store fails (which throws only when
    /// there are none yet).
    func read(from store: any ConfigStore) async throws(AdminError) -> [StoredToken] {
        let now = ContinuousClock.now
        if let cached = known.withLock({ $0.failedAt.map { now - $0 < Self.retryAfter } == true ? $0.tokens : nil }) {
            return cached
        }
        do {
            let read = try await store.tokens()
            known.withLock { $0 = Known(tokens: read, failedAt: nil) }
            return read
        } catch {
            let cached = known.withLock { known in
                known.failedAt = .now
                return known.tokens
            }
            guard let cached else { throw .storeUnavailable("cannot read tokens", error) }
            return cached
        }
    }
}

/// What endpoint handlers work with.
struct AdminContext: Sendable {
    let controller: ConfigController
    let store: any ConfigStore
    let proxy: ProxyServer
    let rollouts: RolloutController
    let logger: Logger
    let knownTokens = LastKnownTokens()

    /// Appends an audit entry; a failure is logged (the operation's own result stands). What a
    /// client chose (the path, the target) is stored up to 256 characters, and a refusal's reason
    /// up to 1 KiB: a client without a token wrote 21 MiB with 200 requests of 60,000-character
    /// paths. A change's diff is kept whole.
    func audit(_ record: AuditRecord) async {
        var record = record
        record.operation = Self.clipped(record.operation, to: 256)
        record.target = Self.clipped(record.target, to: 256)
        if record.result != "ok" { record.detail = Self.clipped(record.detail, to: 1024) }
        do {
            try await store.appendAudit(record)
        } catch {
            logger.error("cannot write the audit log", metadata: ["error": "\(error)", "operation": "\(record.operation)"])
        }
    }

    static func clipped(_ text: String, to length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length)) + "… (\(text.utf8.count) bytes)"
    }
}

/// The failed authentications of the admin API's clients (see ``AuthenticationFailures``).
actor AuthenticationFailureLog {
    private var failures = AuthenticationFailures()

    func retryAfter(client: String) -> Int? {
        failures.retryAfter(client: client, now: DispatchTime.now().uptimeNanoseconds)
    }

    func recordFailure(client: String) -> AuthenticationFailures.Verdict {
        failures.recordFailure(client: client, now: DispatchTime.now().uptimeNanoseconds)
    }
}

/// The admin API, independent of the HTTP server that carries it: finds the endpoint, checks the
/// token, its role and `If-Match`, parses the body, runs the handler and turns refusals into JSON
/// errors. Every change, accepted or refused, and every failed authentication is audited.
public final class AdminAPI: Sendable {
    /// Larger bodies are refused with 413.
    public static let maximumBodySize = 1 << 20

    /// One HTTP request as the API sees it.
    public struct Request: Sendable {
        public var method: String
        /// The path as sent (percent-encoded).
        public var path: String
        /// The query string without `?`.
        public var query: String
        public var authorization: String?
        public var ifMatch: String?
        public var contentType: String?
        public var client: String

        public init(method: String, path: String, query: String, authorization: String?, ifMatch: String?, contentType: String?, client: String) {
            self.method = method
            self.path = path
            self.query = query
            self.authorization = authorization
            self.ifMatch = ifMatch
            self.contentType = contentType
            self.client = client
        }
    }

    /// A request's body, read only once the request was authorised and its endpoint found: a
    /// token-less 64 MiB upload was read to its end before its 401.
    public enum Body: Sendable {
        /// The body; `nil` when there was none.
        case bytes([UInt8]?)
        /// Larger than ``maximumBodySize`` (and not read further).
        case tooLarge
    }

    /// One HTTP response.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String
    }

    let context: AdminContext
    private let authenticationFailures = AuthenticationFailureLog()
    let endpoints: [AdminEndpoint]

    /// The API of a controller with a store (its versions, audit and tokens are what the API serves).
    public init(controller: ConfigController, proxy: ProxyServer, rollouts: RolloutController, logger: Logger = Logger(label: "fulcrum.admin")) {
        guard let store = controller.store else { preconditionFailure("the admin API needs a controller with a store") }
        let context = AdminContext(controller: controller, store: store, proxy: proxy, rollouts: rollouts, logger: logger)
        self.context = context
        let operations = context.configEndpoints() + context.resourceEndpoints() + context.rolloutEndpoints() + context.observationEndpoints()
        let openAPI = AdminEndpoint("GET", "/api/v1/openapi.json", .viewer, "This document", returns: "AnyJSON") { _ in
            .json(OpenAPIDocument.build(operations))
        }
        endpoints = operations + [openAPI]
    }

    /// Reads the tokens once, so that they can be checked even if the store is unreachable
    /// before the first authenticated request.
    public func loadTokens() async {
        _ = try? await context.knownTokens.read(from: context.store)
    }

    /// The console's files and the redirect to them: they hold no data and need no token.
    private static func servesWithoutToken(method: String, path: String) -> Bool {
        (method == "GET" || method == "HEAD") && (path == "/" || ConsoleAssets.asset(for: path) != nil)
    }

    /// Answers one request; `readBody` is called only when the request gets that far (the
    /// caller must not read a body that was not asked for).
    public func respond(to request: Request, readBody: () async -> Body) async -> Response {
        if Self.servesWithoutToken(method: request.method, path: request.path) {
            if request.path == "/" {
                return Response(status: 302, headers: [("Location", "/console/"), ("Cache-Control", "no-store")], body: "")
            }
            if let asset = ConsoleAssets.asset(for: request.path) {
                return Response(
                    status: 200, headers: ConsoleAssets.securityHeaders + [("Content-Type", asset.contentType)],
                    body: String(decoding: asset.bytes, as: UTF8.self))
            }
        }
        do {
            let reply = try await dispatch(request, readBody: readBody)
            return render(reply)
        } catch {
            var response = refusal(error)
            if error.status == 405, let allowed = allowedMethods(request.path) {
                response.headers.append(("Allow", allowed.joined(separator: ", ")))
            }
            return response
        }
    }

    /// The response for an error, with the headers its status calls for.
    private func refusal(_ error: AdminError) -> Response {
        var response = render(AdminReply(status: error.status, body: .json(error.document)))
        if error.status == 401 { response.headers.append(("WWW-Authenticate", "Bearer")) }
        if let seconds = error.retryAfter { response.headers.append(("Retry-After", String(seconds))) }
        return response
    }

    /// The token of a request to `segments`, or `nil` for an open endpoint. Every path but an
    /// open endpoint's requires a valid token first, before a 404 or 405 could tell a client
    /// without one which paths and methods exist.
    private func authorize(_ request: Request, segments: [String]) async throws(AdminError) -> StoredToken? {
        let matching = endpoints.filter { $0.template.match(segments) != nil }
        if matching.contains(where: { $0.method == request.method && $0.access == .open }) { return nil }
        if let seconds = await authenticationFailures.retryAfter(client: request.client) { throw .tooManyFailedAuthentications(retryAfter: seconds) }
        guard let token = try await authenticate(request) else {
            if case .audit(let unrecorded) = await authenticationFailures.recordFailure(client: request.client) {
                var detail = request.authorization == nil ? "no token" : "unknown token"
                if unrecorded > 0 { detail += "; and \(unrecorded) more failed authentications from this client not recorded one by one" }
                await audit(AuditRecord(
                    actor: "-", client: request.client, operation: "\(request.method) \(request.path)",
                    target: segments.dropFirst(2).joined(separator: "/"), result: "401 unauthorized", detail: detail))
            }
            throw .unauthorized
        }
        return token
    }

    private func dispatch(_ request: Request, readBody: () async -> Body) async throws(AdminError) -> AdminReply {
        guard let segments = Self.segments(request.path) else { throw .badRequest("the path is not valid percent-encoding") }
        let token = try await authorize(request, segments: segments)
        var allowed: [String] = []
        var found: (AdminEndpoint, [String: String])?
        for endpoint in endpoints {
            guard let parameters = endpoint.template.match(segments) else { continue }
            allowed.append(endpoint.method)
            if endpoint.method == request.method { found = (endpoint, parameters) }
        }
        guard let (endpoint, parameters) = found else {
            if allowed.isEmpty { throw .notFound("there is no endpoint \(request.path)") }
            throw .methodNotAllowed(allowed)
        }
        let operation = "\(request.method) \(request.path)"
        let target = segments.dropFirst(2).joined(separator: "/")

        if endpoint.access != .open, let token {
            if token.role != .admin, endpoint.access == .admin || endpoint.access == .configChange {
                await audit(AuditRecord(actor: token.name, client: request.client, operation: operation, target: target, result: "403 forbidden",
                    detail: "viewer token"))
                throw .forbidden
            }
        }
        do throws(AdminError) {
            let precondition = try Self.precondition(request.ifMatch)
            if endpoint.access == .configChange, precondition == .none { throw .preconditionRequired }
            guard case .bytes(let bytes) = await readBody() else { throw .payloadTooLarge }
            let body = try Self.body(bytes, contentType: request.contentType)
            let call = AdminCall(
                method: request.method, path: request.path, parameters: parameters, query: Self.query(request.query), body: body,
                token: token, client: request.client, precondition: precondition, endpoint: endpoint)
            return try await endpoint.handler(call)
        } catch {
            if endpoint.access == .admin || endpoint.access == .configChange {
                await audit(AuditRecord(
                    actor: token?.name ?? "-", client: request.client, operation: operation, target: target,
                    result: "\(error.status) \(error.code)", detail: error.description))
            }
            throw error
        }
    }

    private func audit(_ record: AuditRecord) async { await context.audit(record) }

    private func authenticate(_ request: Request) async throws(AdminError) -> StoredToken? {
        guard let header = request.authorization else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let tokens = try await context.knownTokens.read(from: context.store)
        return AdminTokens.authenticate(String(parts[1]).trimmingCharacters(in: .whitespaces), among: tokens)
    }

    private func allowedMethods(_ path: String) -> [String]? {
        guard let segments = Self.segments(path) else { return nil }
        let methods = endpoints.filter { $0.template.match(segments) != nil }.map(\.method)
        return methods.isEmpty ? nil : methods
    }

    private func render(_ reply: AdminReply) -> Response {
        var headers: [(String, String)] = [("Cache-Control", "no-store")]
        if let version = reply.version { headers.append(("ETag", "\"\(version)\"")) }
        let body: String
        switch reply.body {
        case .json(let document):
            headers.append(("Content-Type", "application/json; charset=utf-8"))
            body = document.jsonText(pretty: true) + "\n"
        case .text(let text, let contentType):
            headers.append(("Content-Type", contentType))
            body = text
        case .empty:
            body = ""
        }
        return Response(status: reply.status, headers: headers, body: body)
    }

    // MARK: request parts

    static func segments(_ path: String) -> [String]? {
        var result: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = String(part).removingPercentEncoding else { return nil }
            result.append(decoded)
        }
        return result
    }

    static func query(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    static func precondition(_ header: String?) throws(AdminError) -> AdminCall.Precondition {
        guard var text = header?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return .none }
        if text == "*" { return .any }
        if text.hasPrefix("W/") { text.removeFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
        guard let number = Int(text), number > 0 else {
            throw .badRequest("If-Match must be a version number in quotes (\"12\") or *")
        }
        return .version(number)
    }

    static func body(_ bytes: [UInt8]?, contentType: String?) throws(AdminError) -> ConfigDocument? {
        guard let bytes, !bytes.isEmpty else { return nil }
        if let type = contentType {
            let mediaType = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard mediaType == "application/json" || mediaType.hasSuffix("+json") else { throw .unsupportedMediaType(mediaType) }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidJSON("the body is not UTF-8") }
        do {
            return try JSONDocumentReader.parse(text)
        } catch {
            throw .invalidJSON("\(error)")
        }
    }
}
