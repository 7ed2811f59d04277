import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// A service's circuit breaker on real traffic: opens, refuses with 503, half-opens, closes.
@Suite(.realSockets) struct CircuitBreakerIntegrationTests {
    @Test func theBreakerOpensRefusesHalfOpensAndCloses() async throws {
        let fixture = try await ProxyFixture.start(backends: ["breaker"]) { p in
            """
            services:
              s:
                circuit_breaker: { window: 10s, minimum_requests: 4, failure_ratio: 50%, cool_down: 1s, trial_requests: 2, failure_statuses: [500] }
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["breaker"]!) }]
            default: { service: s }
            """
        }
        let backend = fixture.backends["breaker"]!
        let client = try await fixture.client()  // one connection: one event loop, one breaker
        #expect(try await client.request(.GET, "/status/200").status == .ok)
        #expect(try await client.request(.GET, "/status/500").status == .internalServerError)
        #expect(try await client.request(.GET, "/status/200").status == .ok)
        #expect(try await client.request(.GET, "/status/500").status == .internalServerError, "2 of 4 failed: the circuit opens")
        let forwarded = backend.requests
        let refused = try await client.request(.GET, "/status/200")
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.headers.first(name: "Retry-After") == "1")
        #expect(refused.body == "503 Service Unavailable: circuit open for service 's'\n")
        #expect(backend.requests == forwarded, "an open circuit sends nothing to the node")
        #expect(await fixture.server.state().services[0].breakers.contains("open"), "the state API shows the open circuit")

        try await Task.sleep(for: .milliseconds(1100))
        // half-open: two trials; a failed trial reopens
        #expect(try await client.request(.GET, "/status/500").status == .internalServerError)
        #expect(try await client.request(.GET, "/status/200").status == .serviceUnavailable, "reopened by the failed trial")
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await client.request(.GET, "/status/200").status == .ok)
        #expect(try await client.request(.GET, "/status/200").status == .ok, "two successful trials close the circuit")
        for _ in 0..<5 { #expect(try await client.request(.GET, "/status/200").status == .ok) }
        await client.close()
        await fixture.stop()
    }
}
