import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Passive health on real traffic: failing nodes are ejected for every event loop.
@Suite(.realSockets) struct PassiveHealthIntegrationTests {
    @Test func aNodeIsEjectedAfterItsFailureStreakAndTrafficAvoidsIt() async throws {
        let dead = try await FailureIntegrationTests.deadPort()
        let fixture = try await ProxyFixture.start(backends: ["passive-live"]) { p in
            """
            services:
              s:
                passive_health: { consecutive_failures: 3, base_ejection: 30s }
                nodes:
                  - { name: dead, host: 127.0.0.1, port: \(dead) }
                  - { name: live, host: 127.0.0.1, port: \(p["passive-live"]!) }
            default: { service: s }
            """
        }
        // a refused connection is retried on the live node, so clients see no failure; each turn
        // of the dead node is one failed connection: exactly the streak, then it is not tried
        let client = try await fixture.client()
        for _ in 0..<30 { #expect(try await client.request(.POST, "/", body: "x").status == .ok) }
        let errors = await fixture.server.traffic(seconds: 1).nodes.first { $0.name == "dead" }?.connectErrors
        #expect(errors == 3, "after the ejection only the live node is used")
        // a new connection (possibly on the other event loop) avoids the node too
        let other = try await fixture.client()
        for _ in 0..<10 { #expect(try await other.request(.POST, "/", body: "x").status == .ok) }
        await client.close()
        await other.close()
        await fixture.stop()
    }

    @Test func failureStatusesCountAndTheEjectionCapKeepsHalfTheNodes() async throws {
        let fixture = try await ProxyFixture.start(backends: ["status-a", "status-b"]) { p in
            """
            services:
              s:
                passive_health: { consecutive_failures: 2, failure_statuses: [500], max_ejected_percent: 50 }
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(p["status-a"]!) }
                  - { name: b, host: 127.0.0.1, port: \(p["status-b"]!) }
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        var backends: [String] = []
        for _ in 0..<20 {
            let response = try await client.request(.GET, "/status/500")
            #expect(response.status == .internalServerError, "statuses pass through unchanged")
            backends.append(response.backend ?? "?")
        }
        // both fail; the first to reach its streak is ejected, the other stays because of the cap
        let tail = Set(backends.suffix(12))
        #expect(tail.count == 1, "one node serves everything once the other is ejected: \(backends)")
        await client.close()
        await fixture.stop()
    }

    @Test func whenNoNodeIsUsableTheServiceRejectsOrPanicsAsConfigured() async throws {
        let deadA = try await FailureIntegrationTests.deadPort()
        let deadB = try await FailureIntegrationTests.deadPort()
        let fixture = try await ProxyFixture.start(backends: []) { _ in
            """
            services:
              strict:
                passive_health: { consecutive_failures: 1, max_ejected_percent: 100 }
                nodes: [{ name: a, host: 127.0.0.1, port: \(deadA) }, { name: b, host: 127.0.0.1, port: \(deadB) }]
              loose:
                passive_health: { consecutive_failures: 1, max_ejected_percent: 100 }
                when_no_node: panic
                nodes: [{ name: a, host: 127.0.0.1, port: \(deadA) }, { name: b, host: 127.0.0.1, port: \(deadB) }]
            routes:
              - { name: strict, match: { path_prefix: /strict }, service: strict }
              - { name: loose, match: { path_prefix: /loose }, service: loose }
            """
        }
        let client = try await fixture.client()
        // each request tries one node, then the other (nothing was sent): both fail and are ejected
        #expect(try await client.request(.POST, "/strict", body: "x").status == .badGateway)
        #expect(try await client.request(.POST, "/loose", body: "x").status == .badGateway)
        let rejected = try await client.request(.POST, "/strict", body: "x")
        #expect(rejected.status == .serviceUnavailable)
        #expect(rejected.body == "503 Service Unavailable: no usable node in service 'strict'\n")
        let panicked = try await client.request(.POST, "/loose", body: "x")
        #expect(panicked.status == .badGateway, "panic mode still tries a node")
        await client.close()
        await fixture.stop()
    }
}
