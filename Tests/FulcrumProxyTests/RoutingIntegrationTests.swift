import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Requests through a real proxy on 127.0.0.1 to real backends: balancing, match kinds, headers.
@Suite(.realSockets) struct RoutingIntegrationTests {
    @Test func weightedRoundRobinIsExactOnOneConnection() async throws {
        let fixture = try await ProxyFixture.start(backends: ["dist-a", "dist-b"]) { ports in
            """
            services:
              web:
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(ports["dist-a"]!), weight: 3 }
                  - { name: b, host: 127.0.0.1, port: \(ports["dist-b"]!), weight: 1 }
            default: { service: web }
            """
        }
        let client = try await fixture.client()
        var counts: [String: Int] = [:]
        for _ in 0..<400 {
            let response = try await client.request(.GET, "/")
            #expect(response.status == .ok)
            counts[response.backend ?? "?", default: 0] += 1
        }
        #expect(counts == ["dist-a": 300, "dist-b": 100])
        await client.close()
        await fixture.stop()
    }

    @Test func everyMatchKindAndPinnedRoutes() async throws {
        let fixture = try await ProxyFixture.start(backends: ["m-default", "m-exact", "m-prefix", "m-regex", "m-pin-1", "m-pin-2"]) { p in
            """
            services:
              default: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["m-default"]!) }] }
              exact: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["m-exact"]!) }] }
              prefix: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["m-prefix"]!) }] }
              regex: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["m-regex"]!) }] }
              pair:
                nodes:
                  - { name: one, host: 127.0.0.1, port: \(p["m-pin-1"]!) }
                  - { name: two, host: 127.0.0.1, port: \(p["m-pin-2"]!) }
            routes:
              - { name: exact, match: { path: /exact }, service: exact }
              - { name: prefix, match: { path_prefix: /pre/ }, service: prefix }
              - { name: regex, match: { path_regex: '^/re/[0-9]+$' }, service: regex }
              - { name: host, match: { host: '*.example.com' }, service: pair, node: two }
              - { name: method, match: { path_prefix: /m/, methods: [DELETE] }, service: pair, node: two }
              - { name: header, match: { headers: { X-Tenant: acme } }, service: pair, node: one }
              - { name: query, match: { path_prefix: /q, query: { lang: zh } }, service: pair, node: two }
              - { name: cookie, match: { path_prefix: /c, cookies: { beta: "1" } }, service: pair, node: one }
            default: { service: default }
            """
        }
        let client = try await fixture.client()
        func backend(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = []) async throws -> String? {
            try await client.request(method, uri, headers: headers).backend
        }
        func backend(_ uri: String, _ headers: [(String, String)] = []) async throws -> String? {
            try await backend(.GET, uri, headers)
        }
        #expect(try await backend("/exact") == "m-exact")
        #expect(try await backend("/exact/more") == "m-default")
        #expect(try await backend("/pre/x") == "m-prefix")
        #expect(try await backend("/re/42") == "m-regex")
        #expect(try await backend("/re/42a") == "m-default")
        #expect(try await backend("/any", [("Host", "shop.example.com:8080")]) == "m-pin-2")
        #expect(try await backend(.DELETE, "/m/1") == "m-pin-2")
        #expect(try await backend(.GET, "/m/1") == "m-default")
        for _ in 0..<5 { #expect(try await backend("/h", [("X-Tenant", "acme")]) == "m-pin-1") }
        #expect(try await backend("/q?a=1&lang=zh") == "m-pin-2")
        #expect(try await backend("/q?lang=en") == "m-default")
        #expect(try await backend("/c", [("Cookie", "x=y; beta=1")]) == "m-pin-1")
        #expect(try await backend("/c", [("Cookie", "beta=0")]) == "m-default")
        await client.close()
        await fixture.stop()
    }

    @Test func proxyHeadersAreSetAndHopByHopHeadersRemoved() async throws {
        let fixture = try await ProxyFixture.start(backends: ["hdr"]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["hdr"]!) }] } }\ndefault: { service: s }"
        }
        let client = try await fixture.client()
        let response = try await client.request(.GET, "/x", headers: [
            ("Host", "api.example.com"), ("X-Forwarded-For", "10.1.1.1"), ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "hidden"), ("Keep-Alive", "timeout=5"), ("X-Real-IP", "6.6.6.6"), ("X-Custom", "kept"),
        ])
        let seen = response.body
        #expect(seen.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1\n"))
        #expect(seen.contains("x-real-ip: 127.0.0.1\n"))
        #expect(!seen.contains("6.6.6.6"))
        #expect(seen.contains("x-forwarded-proto: http\n"))
        #expect(seen.contains("x-forwarded-host: api.example.com\n"))
        #expect(seen.contains("host: api.example.com\n"))
        #expect(seen.contains("x-custom: kept\n"))
        #expect(!seen.contains("x-secret"))
        #expect(!seen.contains("keep-alive"))
        #expect(!seen.contains("connection:"))
        let generated = try #require(response.headers.first(name: "X-Request-ID"))
        #expect(generated.count == 16)
        #expect(seen.contains("x-request-id: \(generated)\n"))

        let passed = try await client.request(.GET, "/y", headers: [("X-Request-ID", "trace-123")])
        #expect(passed.headers.first(name: "X-Request-ID") == "trace-123")
        #expect(passed.body.contains("x-request-id: trace-123\n"))
        await client.close()
        await fixture.stop()
    }

    @Test func noRouteAnswers404WithTheConfiguredBody() async throws {
        let fixture = try await ProxyFixture.start(backends: ["nr"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["nr"]!) }] } }
            routes: [{ name: only, match: { path: /only }, service: s }]
            errors: { 404: { body: "nothing here\\n", content_type: text/plain } }
            """
        }
        let client = try await fixture.client()
        let missing = try await client.request(.GET, "/elsewhere")
        #expect(missing.status == .notFound)
        #expect(missing.body == "nothing here\n")
        #expect(missing.headers.first(name: "Content-Type") == "text/plain")
        // the connection stays usable
        #expect(try await client.request(.GET, "/only").backend == "nr")
        await client.close()
        await fixture.stop()
    }
}
