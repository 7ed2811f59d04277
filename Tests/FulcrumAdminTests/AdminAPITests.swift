import Foundation
import FulcrumAdmin
import FulcrumCore
import FulcrumStore
import Testing
import RealSockets
import TestCertificates

/// The admin API over HTTP against a running data plane and a real SQLite store.
@Suite(.realSockets) struct AdminAPITests {
    @Test func tokensAreRequiredRolesAreEnforcedAndRefusalsAudited() async throws {
        let fixture = try await AdminFixture()
        let health = try await fixture.call("GET", "/api/v1/health", as: .none)
        #expect(health.status == 200 && health["status"] == .string("ok"))

        let anonymous = try await fixture.call("GET", "/api/v1/config", as: .none)
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["www-authenticate"] == "Bearer")
        #expect(anonymous["error", "code"] == .string("unauthorized"))
        #expect(try await fixture.call("GET", "/api/v1/config", as: .raw("Bearer fulcrum_wrong")).status == 401)
        #expect(try await fixture.call("GET", "/api/v1/config", as: .raw("Basic \(fixture.adminSecret)")).status == 401)

        let viewer = try await fixture.call("GET", "/api/v1/services", as: .viewer)
        #expect(viewer.status == 200 && viewer.headers["etag"] == "\"1\"")
        let forbidden = try await fixture.call("PATCH", "/api/v1/services/web", as: .viewer, ifMatch: "*", body: #"{"strategy":"random"}"#)
        #expect(forbidden.status == 403)
        #expect(try await fixture.call("GET", "/api/v1/tokens", as: .viewer).status == 403)
        #expect(try await fixture.activeVersion() == 1, "nothing changed")

        let audit = try await fixture.store.auditEntries(AuditQuery())
        // one client's failed authentications in a minute: the first is recorded, the next are counted
        #expect(audit.filter { $0.record.result == "401 unauthorized" }.count == 1)
        #expect(audit.contains { $0.record.result == "403 forbidden" && $0.record.actor == "watcher" && $0.record.target == "services/web" })
        try await fixture.stop()
    }

    @Test func servicesNodesAndRoutesAreCreatedReadReplacedPatchedAndDeleted() async throws {
        let fixture = try await AdminFixture()
        let b = fixture.backends[1].port
        // services
        let created = try await fixture.call(
            "POST", "/api/v1/services?message=add%20search", ifMatch: "\"1\"",
            body: #"{"name":"search","strategy":"hash","hash_key":"header:X-User","nodes":[{"name":"s1","host":"127.0.0.1","port":\#(b)}]}"#)
        #expect(created.status == 201)
        #expect(created["version", "number"] == .int(2) && created["version", "message"] == .string("add search"))
        #expect(created["item", "name"] == .string("search"))
        #expect(created.headers["etag"] == "\"2\"")
        #expect(try await fixture.call("POST", "/api/v1/services", ifMatch: "*", body: #"{"name":"search","nodes":[]}"#).status == 409)
        let service = try await fixture.call("GET", "/api/v1/services/search")
        #expect(service["strategy"] == .string("hash") && service["nodes"]?.items.count == 1)
        let patched = try await fixture.call("PATCH", "/api/v1/services/search", ifMatch: "\"2\"", body: #"{"strategy":"random","hash_key":null}"#)
        #expect(patched.status == 200 && patched["item", "strategy"] == .string("random") && patched["item", "hash_key"] == nil)
        let replaced = try await fixture.call(
            "PUT", "/api/v1/services/search", ifMatch: "\"3\"", body: #"{"nodes":[{"name":"s2","host":"127.0.0.1","port":\#(b)}]}"#)
        #expect(replaced.status == 200 && replaced["item", "nodes"]?.items.first?["name"] == .string("s2") && replaced["item", "strategy"] == nil)
        let renamed = try await fixture.call("PUT", "/api/v1/services/search", ifMatch: "*", body: #"{"name":"other","nodes":[]}"#)
        #expect(renamed.status == 400)

        // nodes
        let node = try await fixture.call("POST", "/api/v1/services/search/nodes", ifMatch: "\"4\"", body: #"{"name":"s3","host":"127.0.0.1","port":\#(b),"weight":2}"#)
        #expect(node.status == 201 && node["item", "weight"] == .int(2))
        let nodes = try await fixture.call("GET", "/api/v1/services/search/nodes")
        #expect(nodes["items"]?.items.compactMap { $0["name"]?.stringValue } == ["s2", "s3"])
        #expect(try await fixture.call("PATCH", "/api/v1/services/search/nodes/s3", ifMatch: "\"5\"", body: #"{"weight":7}"#)["item", "weight"] == .int(7))
        #expect(try await fixture.call("PUT", "/api/v1/services/search/nodes/s3", ifMatch: "\"6\"", body: #"{"host":"127.0.0.1","port":\#(b)}"#)["item", "weight"] == nil)
        #expect(try await fixture.call("DELETE", "/api/v1/services/search/nodes/s3", ifMatch: "\"7\"").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/services/search/nodes/s3").status == 404)
        #expect(try await fixture.call("GET", "/api/v1/services/nope/nodes").status == 404)

        // routes, in order, and moved
        let route = try await fixture.call(
            "POST", "/api/v1/routes?position=0", ifMatch: "\"8\"", body: #"{"name":"find","match":{"path_prefix":"/find/"},"service":"search"}"#)
        #expect(route.status == 201)
        var order = try await fixture.call("GET", "/api/v1/routes")["items"]?.items.compactMap { $0["name"]?.stringValue }
        #expect(order == ["find", "api"])
        #expect(try await fixture.call("POST", "/api/v1/routes/find/move", ifMatch: "\"9\"", body: #"{"position":1}"#).status == 200)
        order = try await fixture.call("GET", "/api/v1/routes")["items"]?.items.compactMap { $0["name"]?.stringValue }
        #expect(order == ["api", "find"])
        #expect(try await fixture.proxied("/find/x") == "b")
        #expect(try await fixture.call("PATCH", "/api/v1/routes/find", ifMatch: "\"10\"", body: #"{"match":{"path_prefix":"/lookup/"}}"#).status == 200)
        #expect(try await fixture.call("GET", "/api/v1/routes/find")["match", "path_prefix"] == .string("/lookup/"))

        // a service still routed to cannot go; once its route is gone it can
        let inUse = try await fixture.call("DELETE", "/api/v1/services/search", ifMatch: "*")
        #expect(inUse.status == 422)
        #expect(inUse["error", "issues"]?.items.first?["path"] == .string("routes[1].service"))
        #expect(try await fixture.call("DELETE", "/api/v1/routes/find", ifMatch: "\"11\"").status == 200)
        #expect(try await fixture.call("DELETE", "/api/v1/services/search", ifMatch: "\"12\"").status == 200)
        #expect(try await fixture.activeVersion() == 13)
        try await fixture.stop()
    }

    @Test func settingsCarryCCRulesAndALiftedBanIsAudited() async throws {
        let fixture = try await AdminFixture()
        let rules = #"[{"name": "burst", "limit": 1, "window": "1m", "ban": "5m", "match": {"path": {"prefix": "/api/"}}}]"#
        #expect(try await fixture.call("PUT", "/api/v1/settings/cc?message=cc", ifMatch: "*", body: rules).status == 200)
        #expect(try await fixture.call("GET", "/api/v1/settings/cc").json?.items.first?["name"]?.stringValue == "burst")
        #expect(try await fixture.call("GET", "/api/v1/settings/nope").status == 404)
        // two loops count apart: enough requests for one to go over
        for _ in 0..<6 { _ = try await fixture.proxied("/api/x") }
        let bans = try await fixture.call("GET", "/api/v1/state")["bans"]?.items ?? []
        #expect(bans.count == 1 && bans.first?["key"]?.stringValue == "127.0.0.1")
        #expect(try await fixture.call("DELETE", "/api/v1/bans/burst/127.0.0.1", as: .viewer).status == 403)
        let lifted = try await fixture.call("DELETE", "/api/v1/bans/burst/127.0.0.1")
        #expect(lifted.status == 200 && lifted["lifted", "rule"]?.stringValue == "burst")
        #expect(try await fixture.call("DELETE", "/api/v1/bans/burst/127.0.0.1").status == 404)
        let audit = try await fixture.store.auditEntries(AuditQuery())
        #expect(audit.contains { $0.record.target == "bans/burst/127.0.0.1" && $0.record.result == "ok" && $0.record.actor == "ops" })
        #expect(try await fixture.call("GET", "/metrics").text.contains(#"fulcrum_cc_bans_total{rule="burst"} 1"#))
        #expect(try await fixture.call("DELETE", "/api/v1/settings/cc?message=off", ifMatch: "*").status == 200)
        try await fixture.stop()
    }

    @Test func policiesAreSetReadAndRemoved() async throws {
        let fixture = try await AdminFixture()
        let set = try await fixture.call(
            "PUT", "/api/v1/services/web/policies/circuit_breaker", ifMatch: "\"1\"", body: #"{"failure_ratio":0.5,"minimum_requests":20}"#)
        #expect(set.status == 200, "\(set.text)")
        #expect(try await fixture.call("GET", "/api/v1/services/web/policies/circuit_breaker")["failure_ratio"] == .number("0.5"))
        let invalid = try await fixture.call("PUT", "/api/v1/routes/api/policies/rate_limit", ifMatch: "*", body: #"{"algorithm":"magic"}"#)
        #expect(invalid.status == 422)
        #expect(invalid["error", "issues"]?.items.first?["path"]?.stringValue?.hasPrefix("routes[0].rate_limit") == true)
        #expect(try await fixture.call("PUT", "/api/v1/routes/api/policies/max_in_flight", ifMatch: "*", body: "5").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/routes/api/policies/max_in_flight").json == .int(5))
        #expect(try await fixture.call("GET", "/api/v1/routes/api/policies/health_check").status == 404)
        let patched = try await fixture.call("PATCH", "/api/v1/services/web/policies/circuit_breaker", ifMatch: "*", body: #"{"minimum_requests":50}"#)
        #expect(patched.status == 200 && patched["item", "minimum_requests"] == .int(50) && patched["item", "failure_ratio"] == .number("0.5"))
        #expect(try await fixture.call("PATCH", "/api/v1/services/web/policies/rate_limit", ifMatch: "*", body: "{}").status == 404)
        #expect(try await fixture.call("DELETE", "/api/v1/services/web/policies/circuit_breaker", ifMatch: "*").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/services/web/policies/circuit_breaker").json == .null)
        try await fixture.stop()
    }

    @Test func writesNeedTheCurrentVersionAndConflictsChangeNothing() async throws {
        let fixture = try await AdminFixture()
        let missing = try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", body: #"{"weight":1}"#)
        #expect(missing.status == 428 && missing["error", "code"] == .string("precondition_required"))
        #expect(try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "\"1\"", body: #"{"weight":1}"#).status == 200)
        let stale = try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "\"1\"", body: #"{"weight":9}"#)
        #expect(stale.status == 412)
        #expect(stale["error", "active_version"] == .int(2))
        #expect(try await fixture.call("GET", "/api/v1/services/web/nodes/b")["weight"] == .int(1))
        #expect(try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "W/\"2\"", body: #"{"weight":3}"#).status == 200)
        #expect(try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "banana", body: "{}").status == 400)
        // An edit that changes nothing makes no version.
        let same = try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "*", body: #"{"weight":3}"#)
        #expect(same.status == 200 && same["created"] == .bool(false) && same["version", "number"] == .int(3))
        try await fixture.stop()
    }

    @Test func badBodiesGetPreciseErrorsAndNothingIsApplied() async throws {
        let fixture = try await AdminFixture()
        let regex = try await fixture.call(
            "POST", "/api/v1/routes", ifMatch: "*", body: #"{"name":"bad","match":{"path_regex":"(["},"service":"web"}"#)
        #expect(regex.status == 422)
        #expect(regex["error", "issues"]?.items.first?["path"] == .string("routes[1].match.path_regex"))
        let malformed = try await fixture.call("PUT", "/api/v1/config", ifMatch: "*", body: #"{"listen": [1,]}"#)
        #expect(malformed.status == 400 && malformed["error", "code"] == .string("invalid_json"))
        #expect(malformed["error", "message"]?.stringValue?.contains("line 1, column") == true)
        #expect(try await fixture.call("PUT", "/api/v1/config", ifMatch: "*", body: "listen: []", contentType: "application/yaml").status == 415)
        let huge = "{\"x\":\"" + String(repeating: "a", count: AdminAPI.maximumBodySize) + "\"}"
        #expect(try await fixture.call("PUT", "/api/v1/config", ifMatch: "*", body: huge).status == 413)
        #expect(try await fixture.call("PUT", "/api/v1/config", ifMatch: "*", body: "[1]").status == 400)
        #expect(try await fixture.call("GET", "/api/v1/nothing").status == 404)
        let wrongMethod = try await fixture.call("DELETE", "/api/v1/config")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "GET, PUT")
        #expect(try await fixture.activeVersion() == 1)
        #expect(try await fixture.store.versions(limit: 10, before: nil).count == 1)
        let rejected = try await fixture.store.auditEntries(AuditQuery()).map(\.record.result)
        #expect(rejected.contains("422 invalid_config") && rejected.contains("400 invalid_json") && rejected.contains("413 payload_too_large"))
        try await fixture.stop()
    }

    @Test func dryRunValidationReportsWhatCheckReports() async throws {
        let fixture = try await AdminFixture()
        let text = """
            {"listen": [{"port": 70000}], "services": {"web": {"strategy": "fastest", "nodes": []}}, "routes": [{"name": "r", "service": "nope"}]}
            """
        let reply = try await fixture.call("POST", "/api/v1/config/validate", as: .viewer, body: text)
        #expect(reply.status == 200 && reply["valid"] == .bool(false))
        var expected: [String] = []
        let document = try JSONDocumentReader.parse(text)
        do {
            _ = try FulcrumConfig.parse(document: document)
        } catch {
            expected = error.issues.map(\.path)
        }
        #expect(!expected.isEmpty)
        #expect(reply["issues"]?.items.compactMap { $0["path"]?.stringValue } == expected)
        let good = try await fixture.call("GET", "/api/v1/config")["config"]!
        #expect(try await fixture.call("POST", "/api/v1/config/validate", body: good.jsonText())["valid"] == .bool(true))
        #expect(try await fixture.activeVersion() == 1)
        try await fixture.stop()
    }

    @Test func explainGivesTheSameAnswerAsTheRouteCommand() async throws {
        let fixture = try await AdminFixture()
        let reply = try await fixture.call(
            "POST", "/api/v1/explain", as: .viewer, body: #"{"method":"post","path":"/api/users?x=1","headers":{"Host":"example.com"},"cookies":{"beta":"1"}}"#)
        let config = try await fixture.controller.activeConfig()
        let report = RouteReport(
            config: config,
            request: try DescribedRequest(method: "POST", target: "/api/users?x=1", headers: [("Host", "example.com"), ("Cookie", "beta=1")]))
        #expect(reply.json == report.document)
        #expect(reply["route"] == .string("api"))
        #expect(try await fixture.call("POST", "/api/v1/explain", body: #"{"path":"no-slash"}"#).status == 400)
        try await fixture.stop()
    }

    @Test func changesRollbackAndDrainTakeEffectOnTraffic() async throws {
        let fixture = try await AdminFixture()
        #expect(try await fixture.proxied("/api/x") == "a")
        // Version 2: all traffic to b.
        #expect(try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "\"1\"", body: #"{"weight":1}"#).status == 200)
        #expect(try await fixture.call("POST", "/api/v1/services/web/nodes/a/drain", ifMatch: "\"2\"").status == 200)
        for _ in 0..<10 { #expect(try await fixture.proxied("/api/x") == "b") }
        let state = try await fixture.call("GET", "/api/v1/services/web/nodes/a")
        #expect(state["drain"] == .bool(true) && state["weight"] == .int(1), "draining keeps the weight")

        let diff = try await fixture.call("GET", "/api/v1/versions/1/diff?to=3")
        #expect(diff["changes"]?.items.compactMap { $0["path"]?.stringValue } == ["services.web.nodes[0].drain", "services.web.nodes[1].weight"])

        // Roll back to version 1: a new version 4 equal to 1, and traffic returns to a.
        let rollback = try await fixture.call("POST", "/api/v1/versions/1/rollback?message=undo", ifMatch: "\"3\"")
        #expect(rollback.status == 200)
        #expect(rollback["version", "number"] == .int(4) && rollback["version", "source"] == .string("rollback"))
        for _ in 0..<10 { #expect(try await fixture.proxied("/api/x") == "a") }
        let v4 = try await fixture.call("GET", "/api/v1/versions/4")
        let v1 = try await fixture.call("GET", "/api/v1/versions/1")
        #expect(v4["config"] == v1["config"] && v4["active"] == .bool(true) && v1["active"] == .bool(false))
        let listed = try await fixture.call("GET", "/api/v1/versions?limit=2")
        #expect(listed["items"]?.items.compactMap { $0["number"]?.intValue } == [4, 3])
        #expect(try await fixture.call("GET", "/api/v1/versions/99").status == 404)
        #expect(try await fixture.call("POST", "/api/v1/versions/99/rollback", ifMatch: "*").status == 404)

        // enable puts it back: weights 1:1 again after the rollback to 1 means only a; enable on a is a no-op
        let enable = try await fixture.call("POST", "/api/v1/services/web/nodes/a/enable", ifMatch: "*")
        #expect(enable.status == 200 && enable["created"] == .bool(false))
        try await fixture.stop()
    }

    @Test func theAuditLogFiltersAndItsChainVerifies() async throws {
        let fixture = try await AdminFixture()
        _ = try await fixture.call("PATCH", "/api/v1/services/web/nodes/b", ifMatch: "*", body: #"{"weight":2}"#)
        _ = try await fixture.call("GET", "/api/v1/config", as: .none)
        let byOps = try await fixture.call("GET", "/api/v1/audit?actor=ops")
        let entry = try #require(byOps["items"]?.items.first)
        #expect(entry["operation"] == .string("PATCH /api/v1/services/web/nodes/b"))
        #expect(entry["version"] == .int(2))
        #expect(entry["detail"]?.stringValue?.contains("services.web.nodes[1].weight: 0 -> 2") == true)
        let byTarget = try await fixture.call("GET", "/api/v1/audit?target=config")
        #expect(byTarget["items"]?.items.allSatisfy { $0["target"]?.stringValue?.hasPrefix("config") == true } == true)
        let future = try await fixture.call("GET", "/api/v1/audit?since=2999-01-01T00:00:00Z")
        #expect(future["items"]?.items.isEmpty == true)
        #expect(try await fixture.call("GET", "/api/v1/audit?since=yesterday").status == 400)
        let page = try await fixture.call("GET", "/api/v1/audit?limit=1")
        let next = try #require(page["next_before"]?.intValue)
        #expect(try await fixture.call("GET", "/api/v1/audit?limit=1&before=\(next)")["items"]?.items.first?["sequence"] == .int(next - 1))
        let verify = try await fixture.call("GET", "/api/v1/audit/verify")
        #expect(verify["intact"] == .bool(true) && verify["entries"] == .int(3))
        try await fixture.stop()
    }

    @Test func tokensAreCreatedUsedAndRevokedThroughTheAPI() async throws {
        let fixture = try await AdminFixture()
        let created = try await fixture.call("POST", "/api/v1/tokens", body: #"{"name":"dashboard","role":"viewer"}"#)
        #expect(created.status == 201)
        let secret = try #require(created["secret"]?.stringValue)
        #expect(try await fixture.call("GET", "/api/v1/state", as: .raw("Bearer \(secret)")).status == 200)
        let listed = try await fixture.call("GET", "/api/v1/tokens")
        #expect(listed["items"]?.items.compactMap { $0["name"]?.stringValue } == ["dashboard", "ops", "watcher"])
        #expect(!listed.text.contains(secret) && !listed.text.contains(AdminTokens.hash(secret)))
        #expect(try await fixture.call("POST", "/api/v1/tokens", body: #"{"name":"dashboard","role":"viewer"}"#).status == 409)
        #expect(try await fixture.call("POST", "/api/v1/tokens", body: #"{"name":"x","role":"root"}"#).status == 400)
        #expect(try await fixture.call("DELETE", "/api/v1/tokens/dashboard").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/state", as: .raw("Bearer \(secret)")).status == 401)
        try await fixture.stop()
    }

    @Test func metricsGiveTheExpiryOfEveryServedCertificate() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test", "www.site.test"], validFor: 40)
        let fixture = try await AdminFixture(
            tlsListener: "{ address: 127.0.0.2, port: 0, tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }")
        let metrics = try await fixture.call("GET", "/metrics", as: .viewer)
        let line = metrics.text.split(separator: "\n").first { $0.hasPrefix("fulcrum_certificate_expiry_timestamp_seconds{") }
        let sample = try #require(line, "\(metrics.text)")
        #expect(sample.hasPrefix(#"fulcrum_certificate_expiry_timestamp_seconds{listener="127.0.0.2:0",name="site.test"} "#))
        let notAfter = try #require(sample.split(separator: " ").last.flatMap { Int64($0) })
        let expected = Int64(Date().timeIntervalSince1970) + 40 * 86_400
        #expect(abs(notAfter - expected) < 60, "\(sample)")
        try await fixture.stop()
    }

    @Test func theCertificateListShowsWhatEachListenerServesAndNeverAKey() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test", "www.site.test"], validFor: 12.5)
        let fixture = try await AdminFixture(
            tlsListener: "{ address: 127.0.0.2, port: 0, tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }")
        let reply = try await fixture.call("GET", "/api/v1/certificates", as: .viewer)
        try await fixture.stop()
        #expect(reply.status == 200)
        let item = try #require(reply.json?["items"]?.items.first, "\(reply.text)")
        #expect(item["listener"] == .string("127.0.0.2:0"))
        #expect(item["file"] == .string(site.cert))
        #expect(item["names"] == .list([.string("site.test"), .string("www.site.test")]))
        #expect(item["subject"] == .string("CN=site.test"))
        #expect(item["issuer"] == .string("CN=Fulcrum Test CA"))
        #expect(item["days_left"] == .int(12))
        #expect(item["state"] == .string("expiring"))
        #expect(item["fingerprint"]?.stringValue?.split(separator: ":").count == 32)
        let key = try String(contentsOfFile: site.key, encoding: .utf8)
        #expect(!reply.text.contains("PRIVATE KEY"))
        #expect(!reply.text.contains(key.split(separator: "\n")[1]))  // no line of the key's base64
    }

    @Test func anUploadedCertificateIsServedListedRolledBackAndItsKeyIsNeverReturned() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let api = try ca.issue("api", names: ["api.test"], validFor: 60.5)
        let fixture = try await AdminFixture(
            tlsListener: "{ address: 127.0.0.2, port: 0, tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }")
        let chain = try String(contentsOfFile: api.cert, encoding: .utf8)
        let key = try String(contentsOfFile: api.key, encoding: .utf8)
        let keyLine = String(key.split(separator: "\n")[1])  // a line of the key's base64
        func upload(_ cert: String, _ key: String) -> String {
            ConfigDocument.mapping([.init("cert", .string(cert)), .init("key", .string(key))]).jsonText()
        }

        let put = try await fixture.call("PUT", "/api/v1/certificates/api", ifMatch: "*", body: upload(chain, key))
        #expect(put.status == 200, "\(put.text)")
        #expect(put["version", "number"] == .int(2))
        #expect(put["item", "names"] == .list([.string("api.test")]))
        #expect(put["item", "stored_name"] == .string("api"))
        #expect(put["item", "days_left"] == .int(60))
        let digest = try #require(fixture.server.runtime.storedCertificates.first?.chainSHA256)
        #expect(try await fixture.call("GET", "/api/v1/config")["config", "stored_certificates", "api", "chain_sha256"] == .string(digest))

        // every TLS listener serves it, before its own files
        let listed = try await fixture.call("GET", "/api/v1/certificates", as: .viewer)
        let items = listed.json?["items"]?.items ?? []
        #expect(items.map { $0["listener"] } == [.string("127.0.0.2:0"), .string("127.0.0.2:0")], "\(listed.text)")
        #expect(items.map { $0["source"] } == [.string("stored"), .string("file")])
        #expect(items.first?["file"] == .null)

        // a key of another certificate, and no certificate at all, are refused with the field
        let wrongKey = try await fixture.call(
            "PUT", "/api/v1/certificates/other", ifMatch: "*", body: upload(chain, try String(contentsOfFile: site.key, encoding: .utf8)))
        #expect(wrongKey.status == 422 && wrongKey["error", "issues"]?.items.first?["path"] == .string("key"), "\(wrongKey.text)")
        #expect(wrongKey.text.contains("is not the private key of the certificate"))
        let noChain = try await fixture.call("PUT", "/api/v1/certificates/other", ifMatch: "*", body: upload("hello", key))
        #expect(noChain.status == 422 && noChain["error", "issues"]?.items.first?["path"] == .string("cert"), "\(noChain.text)")
        #expect(!noChain.text.contains(keyLine) && !wrongKey.text.contains(keyLine))
        #expect(try await fixture.call("PUT", "/api/v1/certificates/a%20b", ifMatch: "*", body: upload(chain, key)).status == 400)
        #expect(try await fixture.call("PUT", "/api/v1/certificates/api", as: .viewer, ifMatch: "*", body: upload(chain, key)).status == 403)

        // deleting makes a version; a rollback to the version that named it serves it again
        let deleted = try await fixture.call("DELETE", "/api/v1/certificates/api", ifMatch: "*")
        #expect(deleted.status == 200 && deleted["version", "number"] == .int(3), "\(deleted.text)")
        #expect(fixture.server.servedCertificates().map(\.certificate.source) == [.file(site.cert)])
        #expect(try await fixture.call("DELETE", "/api/v1/certificates/api", ifMatch: "*").status == 404)
        #expect(try await fixture.call("POST", "/api/v1/versions/2/rollback", ifMatch: "*").status == 200)
        #expect(fixture.server.servedCertificates().map(\.certificate.source) == [.stored("api"), .file(site.cert)])

        // the key is in the store and nowhere the API shows
        #expect(try await fixture.store.certificates([digest])[digest]?.keyPEM == key)
        for path in ["/api/v1/config", "/api/v1/config/yaml", "/api/v1/versions/2", "/api/v1/versions/1/diff?to=4", "/api/v1/audit", "/api/v1/certificates"] {
            let reply = try await fixture.call("GET", path)
            #expect(reply.status == 200, "\(path)")
            #expect(!reply.text.contains("PRIVATE KEY") && !reply.text.contains(keyLine), "\(path) shows the key")
        }
        try await fixture.stop()
    }

    @Test func statisticsAndMetricsCountTheTraffic() async throws {
        let fixture = try await AdminFixture()
        for _ in 0..<20 { #expect(try await fixture.proxied("/api/x") == "a") }
        for _ in 0..<5 { #expect(try await fixture.proxied("/other") == "a") }

        let metrics = try await fixture.call("GET", "/metrics", as: .viewer)
        #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        for line in [
            #"fulcrum_requests_total{route="api",class="2xx"} 20"#, #"fulcrum_requests_total{route="(default)",class="2xx"} 5"#,
            #"fulcrum_node_requests_total{service="web",node="a",class="2xx"} 25"#, #"fulcrum_request_duration_seconds_count{route="api"} 20"#,
            #"fulcrum_request_duration_seconds_bucket{route="api",le="+Inf"} 20"#, #"fulcrum_node_up{service="web",node="a"} 1"#,
            #"fulcrum_upstream_connect_errors_total{service="web",node="b"} 0"#, "fulcrum_config_version 1",
        ] {
            #expect(metrics.text.contains(line + "\n"), "\(line)")
        }
        let sample = #/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf)$/#
        for line in metrics.text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.wholeMatch(of: sample) != nil, "not a Prometheus sample: \(line)")
        }
        // buckets are cumulative
        let buckets = metrics.text.split(separator: "\n").filter { $0.hasPrefix(#"fulcrum_request_duration_seconds_bucket{route="api""#) }
        let counts = buckets.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
        #expect(counts.count == buckets.count && counts == counts.sorted() && counts.last == 20)
        #expect(try await fixture.call("GET", "/metrics", as: .none).status == 401)

        // the window holds complete seconds: wait for the current one to end
        try await Task.sleep(for: .milliseconds(1100))
        let stats = try await fixture.call("GET", "/api/v1/stats?seconds=5&series=true", as: .viewer)
        let api = try #require(stats["routes"]?.items.first { $0["name"] == .string("api") })
        #expect(api["total"]?["requests"] == .int(20))
        #expect(api["window"]?["requests"] == .int(20) && api["window"]?["by_class"]?["2xx"] == .int(20))
        #expect(api["window"]?["p99_ms"] != .null && api["window"]?["error_ratio"] == .number("0.000"))
        let series = try #require(api["series"]?.items)
        #expect(series.count == 5 && series.compactMap { $0["requests"]?.intValue }.reduce(0, +) == 20)
        let node = try #require(stats["nodes"]?.items.first { $0["name"] == .string("a") })
        #expect(node["service"] == .string("web") && node["total"]?["requests"] == .int(25) && node["in_flight"] == .int(0))
        #expect(try await fixture.call("GET", "/api/v1/stats?seconds=0").status == 400)
        try await fixture.stop()
    }

    /// Every operation in the served OpenAPI document is answered by that operation (not 404 for
    /// an unknown path, not 405), and the document lists the operations the routing table has.
    @Test func theOpenAPIDocumentMatchesTheRoutes() async throws {
        let fixture = try await AdminFixture()
        let document = try #require(try await fixture.call("GET", "/api/v1/openapi.json", as: .viewer).json)
        #expect(document["openapi"] == .string("3.0.3"))
        let paths = try #require(document["paths"]?.members)
        var operations = 0
        for path in paths {
            for operation in path.value.members {
                operations += 1
                let concrete = path.key.replacingOccurrences(of: "{version}", with: "1")
                    .replacingOccurrences(of: "{service}", with: "web").replacingOccurrences(of: "{node}", with: "b")
                    .replacingOccurrences(of: "{route}", with: "api").replacingOccurrences(of: "{policy}", with: "max_in_flight")
                    .replacingOccurrences(of: "{name}", with: "nobody")
                let reply = try await fixture.call(operation.key.uppercased(), concrete, ifMatch: "*", body: nil)
                #expect(reply.status != 405, "\(operation.key) \(concrete)")
                #expect(reply["error", "message"]?.stringValue?.hasPrefix("there is no endpoint") != true, "\(operation.key) \(concrete)")
                #expect(operation.value["responses"]?["default"] != nil && operation.value["operationId"] != nil)
            }
        }
        #expect(operations >= 45)
        let schemas = try #require(document["components"]?["schemas"]?.members.map(\.key))
        for reference in Self.references(in: document) {
            #expect(schemas.contains(String(reference.dropFirst("#/components/schemas/".count))), "\(reference) is defined")
        }
        try await fixture.stop()
    }

    /// The console offers the strategies the served document lists (before, it had a list of its
    /// own that lacked `latency`): each one is accepted by validation, and a wrong one is refused
    /// with exactly that list.
    @Test func theServedStrategiesAreExactlyTheOnesValidationAccepts() async throws {
        let fixture = try await AdminFixture()
        let document = try #require(try await fixture.call("GET", "/api/v1/openapi.json", as: .viewer).json)
        let listed = try #require(document["components"]?["schemas"]?["Strategy"]?["enum"]?.items)
        let served = listed.compactMap { $0.stringValue }
        #expect(served.contains("latency") && served.count >= 6)
        func validate(_ service: String) async throws -> AdminFixture.Reply {
            try await fixture.call("POST", "/api/v1/config/validate", as: .viewer, body: """
                {"listen": [{"port": 8080}], "services": {"web": {\(service), "nodes": [{"name": "a", "host": "127.0.0.1", "port": 9}]}}}
                """)
        }
        for strategy in served {
            let setting = strategy == "hash" ? #", "hash_key": "client_ip""# : strategy == "pinned" ? #", "pinned_node": "a""# : ""
            let reply = try await validate(#""strategy": "\#(strategy)"\#(setting)"#)
            #expect(reply["valid"] == .bool(true), "\(strategy): \(reply.text)")
        }
        let wrong = try await validate(#""strategy": "fastest""#)
        #expect(wrong["issues"]?.items.first?["message"]?.stringValue == "'fastest' is not one of \(served.joined(separator: ", "))")
        try await fixture.stop()
    }

    /// The policy names the document serves are the ones the policy endpoints answer, and the
    /// console builds its editors from them (it had a list of its own without when_no_node).
    @Test func theServedPoliciesAreTheOnesTheEndpointsAnswer() async throws {
        let fixture = try await AdminFixture()
        let document = try #require(try await fixture.call("GET", "/api/v1/openapi.json", as: .viewer).json)
        for (owner, schema) in [("/api/v1/services/web", "ServicePolicy"), ("/api/v1/routes/api", "RoutePolicy")] {
            let listed = try #require(document["components"]?["schemas"]?[schema]?["enum"]?.items)
            let served = listed.compactMap { $0.stringValue }
            #expect(!served.isEmpty)
            for policy in served {
                #expect(try await fixture.call("GET", "\(owner)/policies/\(policy)", as: .viewer).status == 200, "\(owner) \(policy)")
            }
            let unknown = try await fixture.call("GET", "\(owner)/policies/nope", as: .viewer)
            #expect(unknown.status == 404 && unknown["error", "message"]?.stringValue == "there is no policy 'nope' (there are: \(served.joined(separator: ", ")))")
        }
        #expect(try #require(document["components"]?["schemas"]?["ServicePolicy"]?["enum"]?.items).contains(.string("when_no_node")))
        try await fixture.stop()
    }

    static func references(in document: ConfigDocument) -> [String] {
        switch document {
        case .mapping(let members):
            return members.flatMap { $0.key == "$ref" ? [$0.value.stringValue ?? ""] : references(in: $0.value) }
        case .list(let items): return items.flatMap(references(in:))
        default: return []
        }
    }

    @Test func probeHistoryShowsRecentResults() async throws {
        let fixture = try await AdminFixture()
        #expect(try await fixture.call("GET", "/api/v1/services/web/nodes/a/probes")["items"] == .list([]))
        #expect(try await fixture.call("PUT", "/api/v1/services/web/policies/health_check", ifMatch: "*", body: #"{"type":"tcp","interval":"1h"}"#).status == 200)
        for index in 0..<25 { fixture.server.recordProbe(service: "web", node: "a", success: index != 24, detail: "probe \(index)") }
        let history = try await fixture.call("GET", "/api/v1/services/web/nodes/a/probes", as: .viewer)
        let items = try #require(history["items"]?.items)
        #expect(items.count == 20 && items.first?["detail"] == .string("probe 5") && items.last?["success"] == .bool(false))
        #expect(items.last?["time"]?.stringValue?.hasPrefix("20") == true)
        #expect(try await fixture.call("GET", "/api/v1/services/web/nodes/zz/probes").status == 404)
        try await fixture.stop()
    }

    @Test func stateShowsTheDataPlane() async throws {
        let fixture = try await AdminFixture()
        let state = try await fixture.call("GET", "/api/v1/state", as: .viewer)
        #expect(state["version"] == .int(1))
        let nodes = state["services"]?.items.first?["nodes"]?.items.compactMap { $0["name"]?.stringValue }
        #expect(nodes == ["a", "b"])
        try await fixture.stop()
    }
}
