import Foundation
import FulcrumCore
import FulcrumProxy
import FulcrumStore

extension AdminContext {
    /// Live state, the audit log and tokens.
    func observationEndpoints() -> [AdminEndpoint] {
        let store = self.store
        let proxy = self.proxy
        let context = self
        return [
            AdminEndpoint("GET", "/api/v1/whoami", .viewer, "The token's name and role", returns: "Token") { call in
                .json(AdminDocuments.token(call.token ?? StoredToken(name: "-", role: .viewer, secretHash: "")))
            },
            AdminEndpoint("GET", "/api/v1/state", .viewer, "Live state: node health, ejections, breakers, limiter counts, requests in flight", returns: "State") { _ in
                .json(AdminDocuments.state(await proxy.state()))
            },
            AdminEndpoint(
                "DELETE", "/api/v1/bans/{rule}/{key}", .admin, "Lift a CC ban on every event loop (audited); the key is counted afresh",
                returns: "BanLifted"
            ) { call throws(AdminError) in
                let rule = call.parameter("rule")
                let key = call.parameter("key")
                let left = await proxy.state().bans.first { $0.rule == rule && $0.key == key }
                guard let left, proxy.liftBan(rule: rule, key: key) else {
                    throw .notFound("CC rule '\(rule)' has no ban on '\(key)'")
                }
                await context.audit(AuditRecord(
                    actor: call.token?.name ?? "-", client: call.client, operation: "DELETE \(call.path)", target: "bans/\(rule)/\(key)",
                    result: "ok", detail: "lifted with \(Int(left.secondsLeft.rounded(.up))) s left"))
                return .json(.mapping([.init("lifted", .mapping([
                    .init("rule", .string(rule)), .init("key", .string(key)),
                    .init("seconds_left", .number(String(format: "%.1f", left.secondsLeft))),
                ]))]))
            },
            AdminEndpoint("GET", "/api/v1/stats", .viewer, "Traffic per route, service and node: totals and the last seconds", returns: "Stats",
                query: [
                    .init(name: "seconds", type: "integer", description: "The window, 1-60 complete seconds (default 60)."),
                    .init(name: "series", type: "boolean", description: "Also give each second of the window."),
                ]
            ) { call throws(AdminError) in
                let seconds = try call.intQuery("seconds", default: 60, in: 1...TrafficRecorder.windowSeconds) ?? 60
                let series = call.query["series"] == "true"
                let report = await proxy.traffic(seconds: seconds)
                let state = await proxy.state()
                let version = await context.controller.active.number
                func inFlight(_ entry: TrafficReport.Entry) -> Int {
                    state.services.first { $0.name == entry.service }?.nodes.first { $0.name == entry.name }?.inFlight ?? 0
                }
                return .json(.mapping([
                    .init("version", .int(version)), .init("seconds", .int(seconds)),
                    .init("routes", .list(report.routes.map { AdminDocuments.traffic($0, series: series) })),
                    .init("services", .list(report.services.map { AdminDocuments.traffic($0, series: series) })),
                    .init("nodes", .list(report.nodes.map { entry in
                        var document = AdminDocuments.traffic(entry, series: series)
                        document["in_flight"] = .int(inFlight(entry))
                        return document
                    })),
                ]))
            },
            AdminEndpoint(
                "GET", "/api/v1/certificates", .viewer,
                "The certificates the TLS listeners serve now, and stored ones no listener serves: names, subject, issuer, expiry and fingerprint (never a key)",
                returns: "CertificateList"
            ) { _ in
                let now = Int64(Date().timeIntervalSince1970)
                let served = proxy.servedCertificates()
                let servedDigests = Set(served.map(\.certificate.chainSHA256))
                let unserved = proxy.runtime.storedCertificates.filter { !servedDigests.contains($0.chainSHA256) }
                return .json(.mapping([.init("items", .list(
                    served.map { listener, certificate in AdminDocuments.certificate(certificate, listener: listener, now: now) }
                        + unserved.map { AdminDocuments.certificate($0, listener: nil, now: now) }))]))
            },
            AdminEndpoint(
                "PUT", "/api/v1/certificates/{name}", .configChange,
                "Upload a certificate chain and its key as PEM; every TLS listener serves it from the next handshake (a new version, audited; the key is never returned)",
                body: "CertificateUpload", returns: "ChangeResult"
            ) { call throws(AdminError) in
                let name = call.parameter("name")
                guard HTTPSyntax.isName(name) else { throw .badRequest("certificate names may use letters, digits, '-', '_' and '.' only") }
                let body = try call.requireObject()
                guard let cert = body["cert"]?.stringValue, let key = body["key"]?.stringValue else {
                    throw .badRequest("'cert' and 'key' must be PEM text")
                }
                if let unknown = body.members.first(where: { $0.key != "cert" && $0.key != "key" })?.key {
                    throw .badRequest("unknown field '\(unknown)': expected cert and key")
                }
                let outcome = try await context.controller.uploadCertificate(
                    named: name, CertificateBundle(chainPEM: cert, keyPEM: key), call.changeRequest(target: "certificates/\(name)"))
                let certificate = proxy.runtime.storedCertificates.first { $0.source == .stored(name) }
                return AdminContext.changeReply(
                    outcome, item: certificate.map { AdminDocuments.certificate($0, listener: nil, now: Int64(Date().timeIntervalSince1970)) } ?? .null)
            },
            AdminEndpoint(
                "DELETE", "/api/v1/certificates/{name}", .configChange,
                "Stop serving a stored certificate (a new version, audited; older versions still name it, so a rollback serves it again)",
                returns: "ChangeResult"
            ) { call throws(AdminError) in
                let name = call.parameter("name")
                let outcome = try await context.controller.change(call.changeRequest(target: "certificates/\(name)")) { document throws(AdminError) in
                    guard document.value(at: ["stored_certificates", name]) != nil else {
                        throw .notFound("there is no stored certificate '\(name)'")
                    }
                    var document = document
                    document.setValue(nil, at: ["stored_certificates", name])
                    if document["stored_certificates"]?.members.isEmpty == true { document.setValue(nil, at: ["stored_certificates"]) }
                    return document
                }
                return AdminContext.changeReply(outcome, item: nil)
            },
            AdminEndpoint(
                "GET", "/api/v1/instances", .viewer,
                "Every Fulcrum instance sharing the store: host, addresses, the version it serves and its state (in sync, behind, failing, gone)",
                returns: "InstanceList"
            ) { _ throws(AdminError) in
                let instances: [InstanceReport]
                let active: Int?
                do {
                    instances = try await store.instances()
                    active = try await store.activeVersion()?.number
                } catch {
                    throw .storeUnavailable("cannot read the instances", error)
                }
                let now = Date()
                return .json(.mapping([
                    .init("active_version", active.map(ConfigDocument.int) ?? .null),
                    .init("items", .list(instances.map { AdminDocuments.instance($0, state: InstanceState($0, activeVersion: active, now: now)) })),
                ]))
            },
            AdminEndpoint("GET", "/metrics", .viewer, "Prometheus metrics (text format 0.0.4)", returns: "Metrics") { _ in
                AdminReply(status: 200, body: .text(await context.metricsText(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
            },
            AdminEndpoint("GET", "/api/v1/services/{service}/nodes/{node}/probes", .viewer, "The node's last active health probe results, oldest first", returns: "ProbeHistory") { call throws(AdminError) in
                let service = call.parameter("service")
                let node = call.parameter("node")
                _ = try NamedCollection.nodes(of: service).item(node, in: await context.controller.active.document)
                return .json(.mapping([.init("items", .list(proxy.probeHistory(service: service, node: node).map { record in
                    .mapping([
                        .init("time", AdminDocuments.timestamp(Date(timeIntervalSince1970: record.time))),
                        .init("success", .bool(record.success)), .init("detail", .string(record.detail)),
                    ])
                }))]))
            },
            AdminEndpoint("GET", "/api/v1/audit", .viewer, "Audit entries, newest first", returns: "AuditPage",
                query: [
                    .init(name: "since", type: "string", description: "Entries at or after this RFC 3339 time."),
                    .init(name: "until", type: "string", description: "Entries at or before this RFC 3339 time."),
                    .init(name: "actor", type: "string", description: "Entries by this token name."),
                    .init(name: "target", type: "string", description: "Entries whose target starts with this (e.g. services/web)."),
                    .init(name: "before", type: "integer", description: "Entries with a lower sequence number (the next page)."),
                    .init(name: "limit", type: "integer", description: "At most this many (1-1000, default 100)."),
                ]
            ) { call throws(AdminError) in
                var query = AuditQuery(limit: try call.intQuery("limit", default: 100, in: 1...1000) ?? 100)
                query.before = try call.intQuery("before", in: 1...Int.max)
                for (name, keyPath) in [("since", \AuditQuery.since), ("until", \AuditQuery.until)] {
                    guard let text = call.query[name] else { continue }
                    guard let date = AdminDocuments.parseTimestamp(text) else {
                        throw .badRequest("'\(name)' must be an RFC 3339 time such as 2026-11-26T10:00:00Z")
                    }
                    query[keyPath: keyPath] = date
                }
                query.actor = call.query["actor"]
                query.targetPrefix = call.query["target"]
                do {
                    let entries = try await store.auditEntries(query)
                    return .json(.mapping([
                        .init("items", .list(entries.map(AdminDocuments.audit))),
                        .init("next_before", entries.count == query.limit ? entries.last.map { .int($0.sequence) } ?? .null : .null),
                    ]))
                } catch {
                    throw .storeUnavailable("cannot read the audit log", error)
                }
            },
            AdminEndpoint("GET", "/api/v1/audit/verify", .viewer, "Recompute the audit hash chain", returns: "AuditVerification") { _ throws(AdminError) in
                do {
                    let result = try await store.verifyAuditChain()
                    return .json(.mapping([
                        .init("intact", .bool(result.isIntact)), .init("entries", .int(result.entries)),
                        .init("first_broken", result.firstBroken.map(ConfigDocument.int) ?? .null),
                        .init("problem", result.problem.map(ConfigDocument.string) ?? .null),
                        .init("head_hash", .string(result.headHash)),
                    ]))
                } catch {
                    throw .storeUnavailable("cannot read the audit log", error)
                }
            },
            AdminEndpoint("GET", "/api/v1/tokens", .admin, "Admin tokens (names and roles; secrets are never shown again)", returns: "TokenList") { _ throws(AdminError) in
                do {
                    return .json(.mapping([.init("items", .list(try await store.tokens().map(AdminDocuments.token)))]))
                } catch {
                    throw .storeUnavailable("cannot read tokens", error)
                }
            },
            AdminEndpoint("POST", "/api/v1/tokens", .admin, "Create a token; the answer shows its secret once", body: "TokenRequest", returns: "NewToken", status: 201) { call throws(AdminError) in
                let body = try call.requireObject()
                guard let name = body["name"]?.stringValue, AdminTokens.isValidName(name) else {
                    throw .badRequest("'name' must be 1 to 64 letters, digits, '-', '_' or '.'")
                }
                guard let role = body["role"]?.stringValue.flatMap(TokenRole.init(rawValue:)) else {
                    throw .badRequest("'role' must be one of: \(TokenRole.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let secret = AdminTokens.generateSecret()
                let token = StoredToken(name: name, role: role, secretHash: AdminTokens.hash(secret))
                do {
                    try await store.addToken(token)
                } catch let error as StoreError {
                    throw .exists("\(error)")
                } catch {
                    throw .storeUnavailable("cannot store the token", error)
                }
                await context.audit(AuditRecord(
                    actor: call.token?.name ?? "-", client: call.client, operation: "POST /api/v1/tokens", target: "tokens/\(name)",
                    result: "ok", detail: "created with role \(role.rawValue)"))
                var document = AdminDocuments.token(token)
                document["secret"] = .string(secret)
                return .json(document, status: 201)
            },
            AdminEndpoint("DELETE", "/api/v1/tokens/{name}", .admin, "Revoke a token", returns: "Revoked") { call throws(AdminError) in
                let name = call.parameter("name")
                let removed: Bool
                do {
                    removed = try await store.removeToken(named: name)
                } catch {
                    throw .storeUnavailable("cannot remove the token", error)
                }
                guard removed else { throw .notFound("there is no token '\(name)'") }
                await context.audit(AuditRecord(
                    actor: call.token?.name ?? "-", client: call.client, operation: "DELETE \(call.path)", target: "tokens/\(name)",
                    result: "ok", detail: "revoked"))
                return .json(.mapping([.init("revoked", .string(name))]))
            },
        ]
    }
}
