import FulcrumCore
import FulcrumProxy
import FulcrumStore

extension AdminContext {
    /// The whole configuration, validation, route explanation and versions.
    func configEndpoints() -> [AdminEndpoint] {
        let controller = self.controller
        let store = self.store
        return [
            AdminEndpoint("GET", "/api/v1/health", .open, "Liveness: answers while the admin listener runs", returns: "Health") { _ in
                .json(.mapping([.init("status", .string("ok"))]))
            },
            AdminEndpoint("GET", "/api/v1/config", .viewer, "The active version and its configuration", returns: "Version") { _ in
                let active = await controller.active
                return .json(AdminDocuments.version(active, active: true), version: active.number)
            },
            AdminEndpoint("GET", "/api/v1/config/yaml", .viewer, "The active configuration as YAML", returns: "YAML") { _ in
                let active = await controller.active
                return AdminReply(status: 200, body: .text(active.document.yamlText(), contentType: "application/yaml; charset=utf-8"), version: active.number)
            },
            AdminEndpoint("PUT", "/api/v1/config", .configChange, "Replace the whole configuration", body: "Config", returns: "ChangeResult") { call throws(AdminError) in
                let body = try call.requireObject()
                let outcome = try await controller.change(call.changeRequest(target: "config")) { _ in body }
                return Self.changeReply(outcome)
            },
            AdminEndpoint("POST", "/api/v1/config/validate", .viewer, "Validate a configuration without applying it (dry run)", body: "AnyJSON", returns: "Validation") { call throws(AdminError) in
                let body = try call.requireBody()
                var issues: [ConfigIssue] = []
                do throws(ConfigError) {
                    _ = try RuntimeConfig(config: FulcrumConfig.parse(document: body), generation: 0)
                } catch {
                    issues = error.issues
                }
                return .json(.mapping([.init("valid", .bool(issues.isEmpty)), .init("issues", .list(issues.map(\.document)))]))
            },
            AdminEndpoint("POST", "/api/v1/explain", .viewer, "Explain which route, service and node a request would get", body: "ExplainRequest", returns: "RouteReport") { call throws(AdminError) in
                let body = try call.requireObject()
                let config: FulcrumConfig
                do {
                    config = try await controller.activeConfig()
                } catch {
                    throw .internalError("the active version does not validate: \(error)")
                }
                let request = try Self.describedRequest(body, encodedSlashes: config.encodedSlashes)
                return .json(RouteReport(config: config, request: request).document)
            },
            AdminEndpoint("GET", "/api/v1/versions", .viewer, "Configuration versions, newest first", returns: "VersionList",
                query: [
                    .init(name: "limit", type: "integer", description: "At most this many (1-500, default 50)."),
                    .init(name: "before", type: "integer", description: "Only versions with a lower number (the next page)."),
                ]
            ) { call throws(AdminError) in
                let limit = try call.intQuery("limit", default: 50, in: 1...500) ?? 50
                let before = try call.intQuery("before", in: 1...Int.max)
                do {
                    let versions = try await store.versions(limit: limit, before: before)
                    return .json(.mapping([.init("items", .list(versions.map(AdminDocuments.summary)))]))
                } catch {
                    throw .storeUnavailable("cannot read versions", error)
                }
            },
            AdminEndpoint("GET", "/api/v1/versions/{version}", .viewer, "One version with its configuration", returns: "Version") { call throws(AdminError) in
                let version = try await Self.storedVersion(call.parameter("version"), store: store)
                let active = await controller.active.number
                return .json(AdminDocuments.version(version, active: version.number == active), version: version.number)
            },
            AdminEndpoint("GET", "/api/v1/versions/{version}/diff", .viewer, "The changes from this version to another", returns: "Diff",
                query: [.init(name: "to", type: "integer", description: "The other version (default: the active one).")]
            ) { call throws(AdminError) in
                let from = try await Self.storedVersion(call.parameter("version"), store: store)
                let to = if let other = call.query["to"] { try await Self.storedVersion(other, store: store) } else { await controller.active }
                let changes = from.document.changes(to: to.document)
                return .json(.mapping([
                    .init("from", .int(from.number)), .init("to", .int(to.number)),
                    .init("changes", .list(changes.map(AdminDocuments.change))),
                    .init("from_yaml", .string(from.document.yamlText())), .init("to_yaml", .string(to.document.yamlText())),
                ]))
            },
            AdminEndpoint("POST", "/api/v1/versions/{version}/rollback", .configChange, "Make a new version equal to this one and activate it", returns: "ChangeResult") { call throws(AdminError) in
                guard let number = Int(call.parameter("version")) else { throw .notFound("there is no version \(call.parameter("version"))") }
                let outcome = try await controller.rollback(to: number, call.changeRequest(target: "versions/\(number)"))
                return Self.changeReply(outcome)
            },
        ]
    }

    /// The answer to an accepted change: the new active version, whether one was made, the changes
    /// and, for resource operations, the resource as it now is.
    static func changeReply(_ outcome: ConfigController.Outcome, item: ConfigDocument? = nil, status: Int = 200) -> AdminReply {
        var document = ConfigDocument.mapping([
            .init("version", AdminDocuments.summary(outcome.version.summary(active: true))),
            .init("created", .bool(outcome.created)),
            .init("changes", .list(outcome.changes.map(AdminDocuments.change))),
        ])
        if let item { document["item"] = item }
        return .json(document, status: outcome.created ? status : 200, version: outcome.version.number)
    }

    static func storedVersion(_ text: String, store: any ConfigStore) async throws(AdminError) -> ConfigVersion {
        guard let number = Int(text), number > 0 else { throw .notFound("there is no version \(text)") }
        let version: ConfigVersion?
        do {
            version = try await store.version(number)
        } catch {
            throw .storeUnavailable("cannot read version \(number)", error)
        }
        guard let version else { throw .notFound("there is no version \(number)") }
        return version
    }

    /// `{"method": "GET", "path": "/x?a=1", "headers": {...}, "cookies": {...}, "client_ip": "..."}`.
    /// A target the data plane would refuse is a 400 here too, with the same reason.
    static func describedRequest(_ body: ConfigDocument, encodedSlashes: RequestTarget.EncodedSlashes) throws(AdminError) -> DescribedRequest {
        let allowed = ["method", "path", "headers", "cookies", "client_ip", "body"]
        if let unknown = body.members.first(where: { !allowed.contains($0.key) }) {
            throw .badRequest("unknown field '\(unknown.key)' (allowed: \(allowed.joined(separator: ", ")))")
        }
        func string(_ key: String) throws(AdminError) -> String? {
            guard let value = body[key] else { return nil }
            guard let text = value.stringValue else { throw .badRequest("'\(key)' must be a string, not \(value.kindName)") }
            return text
        }
        func pairs(_ key: String) throws(AdminError) -> [(String, String)] {
            guard let value = body[key] else { return [] }
            guard case .mapping(let members) = value else { throw .badRequest("'\(key)' must be an object of strings") }
            var result: [(String, String)] = []
            for member in members {
                guard let text = member.value.stringValue else { throw .badRequest("'\(key).\(member.key)' must be a string") }
                result.append((member.key, text))
            }
            return result
        }
        guard let path = try string("path"), path.hasPrefix("/") else { throw .badRequest("'path' is required and must start with '/'") }
        let method = try string("method")?.uppercased() ?? "GET"
        guard HTTPSyntax.isToken(method) else { throw .badRequest("'method' is not a valid HTTP method") }
        var headers = try pairs("headers").map { (name: $0.0, value: $0.1) }
        let cookies = try pairs("cookies")
        if !cookies.isEmpty { headers.append((name: "Cookie", value: cookies.map { "\($0.0)=\($0.1)" }.joined(separator: "; "))) }
        let clientIP = try string("client_ip") ?? "127.0.0.1"
        let requestBody = try string("body")
        do throws(RequestTargetError) {
            var request = try DescribedRequest(method: method, target: path, headers: headers, clientIP: clientIP, encodedSlashes: encodedSlashes)
            request.body = requestBody.map { Array($0.utf8) }
            return request
        } catch {
            throw .badRequest("the data plane refuses this path with 400: \(error.reason)")
        }
    }
}
