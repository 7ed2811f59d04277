import FulcrumCore
import FulcrumProxy
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Traffic splits on real traffic: weights, rules, node groups, hashing and the sticky cookie.
@Suite(.realSockets) struct SplitIntegrationTests {
    static func backendName(_ response: TestResponse) -> String {
        String(response.body.split(separator: "\n").first ?? "")
    }

    @Test func weightsAndRulesSplitBetweenServices() async throws {
        let fixture = try await ProxyFixture.start(backends: ["split-v1", "split-v2"]) { p in
            """
            services:
              v1: { nodes: [{ name: a, host: 127.0.0.1, port: \(p["split-v1"]!) }] }
              v2: { nodes: [{ name: b, host: 127.0.0.1, port: \(p["split-v2"]!) }] }
            routes:
              - name: api
                match: { path_prefix: / }
                split:
                  targets: [{ service: v1, weight: 80 }, { name: canary, service: v2, weight: 20 }]
                  rules: [{ to: canary, header: { X-Canary: "1" } }]
            """
        }
        let client = try await fixture.client()
        var canary = 0
        for _ in 0..<500 where Self.backendName(try await client.request(.GET, "/x")) == "split-v2" { canary += 1 }
        // 20 % of 500 is 100; the standard deviation is about 9
        #expect(abs(canary - 100) < 36, "canary got \(canary) of 500")
        for _ in 0..<20 {
            #expect(Self.backendName(try await client.request(.GET, "/x", headers: [("X-Canary", "1")])) == "split-v2")
        }
        await client.close()
        let report = await fixture.server.traffic(seconds: 1)
        #expect(report.services.first { $0.name == "v2" }?.traffic.totals.requestCount == Int64(canary + 20))
        await fixture.stop()
    }

    @Test func tagsSplitOneServiceIntoNodeGroups() async throws {
        let fixture = try await ProxyFixture.start(backends: ["group-stable", "group-canary"]) { p in
            """
            services:
              s:
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(p["group-stable"]!), tags: [stable] }
                  - { name: b, host: 127.0.0.1, port: \(p["group-canary"]!), tags: [canary] }
            routes:
              - name: api
                split:
                  targets: [{ name: stable, service: s, tags: [stable], weight: 100 }, { name: canary, service: s, tags: [canary], weight: 0 }]
                  rules: [{ to: canary, cookie: { beta: "1" } }]
            """
        }
        let client = try await fixture.client()
        for _ in 0..<20 { #expect(Self.backendName(try await client.request(.GET, "/")) == "group-stable") }
        for _ in 0..<20 {
            #expect(Self.backendName(try await client.request(.GET, "/", headers: [("Cookie", "beta=1")])) == "group-canary")
        }
        await client.close()
        await fixture.stop()
    }

    @Test func theStickyCookieAndTheHashKeyKeepClientsOnTheirSide() async throws {
        let fixture = try await ProxyFixture.start(backends: ["sticky-v1", "sticky-v2"]) { p in
            """
            services:
              v1: { nodes: [{ name: a, host: 127.0.0.1, port: \(p["sticky-v1"]!) }] }
              v2: { nodes: [{ name: b, host: 127.0.0.1, port: \(p["sticky-v2"]!) }] }
            routes:
              - name: web
                match: { path_prefix: /web/ }
                split:
                  targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }]
                  sticky_cookie: { name: side, max_age: 1h }
              - name: api
                match: { path_prefix: /api/ }
                split:
                  targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }]
                  hash_key: header:X-User
            """
        }
        let client = try await fixture.client()
        let first = try await client.request(.GET, "/web/")
        let cookie = try #require(first.headers.first(name: "Set-Cookie"))
        #expect(cookie.hasSuffix("; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"))
        let side = String(cookie.split(separator: ";")[0])  // side=v1 or side=v2
        #expect(side == "side=\(Self.backendName(first) == "sticky-v1" ? "v1" : "v2")")
        for _ in 0..<20 {
            let again = try await client.request(.GET, "/web/", headers: [("Cookie", side)])
            #expect(Self.backendName(again) == Self.backendName(first))
            #expect(again.headers.first(name: "Set-Cookie") == nil, "a browser that has the cookie is not sent it again")
        }
        var sides: Set<String> = []
        for user in 0..<40 {
            let answers = Set(try await (0..<3).asyncMap { _ in
                Self.backendName(try await client.request(.GET, "/api/", headers: [("X-User", "user-\(user)")]))
            })
            #expect(answers.count == 1, "user-\(user) always gets the same side")
            sides.formUnion(answers)
        }
        #expect(sides == ["sticky-v1", "sticky-v2"], "users are spread over both sides")
        await client.close()
        await fixture.stop()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
