import FulcrumCore
import FulcrumProxy
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Traffic statistics count every response: proxied ones per route, service and node, and the
/// ones Fulcrum makes itself (404, 429, 400) where they belong.
@Suite(.realSockets) struct StatisticsIntegrationTests {
    @Test func everyResponseIsCountedWhereItBelongs() async throws {
        let fixture = try await ProxyFixture.start(backends: ["stats"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["stats"]!) }] } }
            routes:
              - { name: api, match: { path_prefix: /api/ }, service: s }
              - name: limited
                match: { path_prefix: /limited/ }
                service: s
                rate_limit: { rate: 0.01, burst: 1, key: route }
            """
        }
        let client = try await fixture.client()
        for _ in 0..<3 { #expect(try await client.request(.GET, "/api/x").status == .ok) }
        #expect(try await client.request(.GET, "/status/503").status == .notFound, "no route and no default")
        #expect(try await client.request(.GET, "/limited/a").status == .ok)
        #expect(try await client.request(.GET, "/limited/a").status == .tooManyRequests)
        #expect(try await client.upload("/api/upload", total: 1000).status == .ok)
        await client.close()
        let malformed = try await RawClient.exchange(port: fixture.port, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        #expect(malformed.text.hasPrefix("HTTP/1.1 400"))

        let report = await fixture.server.traffic(seconds: 5)
        func route(_ name: String) -> TrafficTotals? { report.routes.first { $0.name == name }?.traffic.totals }
        #expect(route("api")?.requests == [0, 4, 0, 0, 0])
        #expect(route("api")?.requestBytes == 1000)
        #expect(route("limited")?.requests == [0, 1, 0, 1, 0])
        #expect(route(TrafficReport.unmatchedRoute)?.requests == [0, 0, 0, 2, 0], "the 404 and the 400")
        #expect(report.services.first?.traffic.totals.requestCount == 6, "the 404 and the 400 have no service")
        #expect(report.nodes.first?.traffic.totals.requestCount == 5, "the 429 never reached the node")
        #expect((route("api")?.latencySumNanoseconds ?? 0) > 0)
        await fixture.stop()
    }

    @Test func historySurvivesAReloadThatKeepsTheNames() async throws {
        let fixture = try await ProxyFixture.start(backends: ["stats-reload"]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["stats-reload"]!) }] } }\nroutes: [{ name: api, match: { path_prefix: / }, service: s }]\n"
        }
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/").status == .ok)
        try fixture.reload(
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(fixture.backends["stats-reload"]!.port) }, { name: m, host: 127.0.0.1, port: 9 }] } }\n"
                + "routes: [{ name: first, match: { path: /x }, service: s }, { name: api, match: { path_prefix: / }, service: s, node: n }]\n",
            generation: 2)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await client.request(.GET, "/").status == .ok)
        await client.close()
        let report = await fixture.server.traffic(seconds: 1)
        #expect(report.routes.first { $0.name == "api" }?.traffic.totals.requestCount == 2)
        #expect(report.nodes.first { $0.name == "n" }?.traffic.totals.requestCount == 2)
        #expect(report.nodes.first { $0.name == "m" }?.traffic.totals.requestCount == 0)
        await fixture.stop()
    }
}
