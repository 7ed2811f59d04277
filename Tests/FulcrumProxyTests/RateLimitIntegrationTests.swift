import FulcrumProxy
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Rate and concurrency limits on real traffic.
@Suite(.realSockets) struct RateLimitIntegrationTests {
    @Test func tokenBucketPerHeaderAnswers429WithHeaders() async throws {
        let fixture = try await ProxyFixture.start(backends: ["limit-token"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["limit-token"]!) }] } }
            routes:
              - name: api
                match: { path_prefix: /api/ }
                service: s
                rate_limit: { algorithm: token_bucket, rate: 0.01, burst: 3, key: header:X-User, body: "slow down\\n" }
            """
        }
        let client = try await fixture.client()
        for _ in 0..<3 { #expect(try await client.request(.GET, "/api/x", headers: [("X-User", "alice")]).status == .ok) }
        let limited = try await client.request(.GET, "/api/x", headers: [("X-User", "alice")])
        #expect(limited.status == .tooManyRequests)
        #expect(limited.body == "slow down\n")
        #expect(limited.headers.first(name: "Retry-After").flatMap(Int.init).map { $0 > 90 && $0 <= 100 } == true, "one token per 100 s")
        #expect(limited.headers.first(name: "RateLimit-Limit") == "3")
        #expect(limited.headers.first(name: "RateLimit-Remaining") == "0")
        #expect(limited.headers.first(name: "RateLimit-Reset").flatMap(Int.init).map { $0 > 290 && $0 <= 300 } == true, "3 tokens in 300 s")
        #expect(try await client.request(.GET, "/api/x", headers: [("X-User", "bob")]).status == .ok, "another key has its own bucket")
        let state = await fixture.server.state()
        #expect(state.routes[0].rateLimit?.rejected == 1 && state.routes[0].rateLimit?.trackedKeys == 2)
        #expect(state.summary.contains("route api rate limit: 1 rejected, 2 keys"))
        await client.close()
        await fixture.stop()
    }

    @Test func tokenBucketAdmitsTheConfiguredRate() async throws {
        let fixture = try await ProxyFixture.start(backends: ["limit-rate"], workers: 1) { p in
            """
            services:
              s:
                rate_limit: { rate: 50, burst: 10, key: service }
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["limit-rate"]!) }]
            default: { service: s }
            """
        }
        let (admitted, total, elapsed) = try await LimiterRateIntegrationTests.hammer(fixture, seconds: 1.5, connections: 4)
        // 50/s plus the burst of 10: never more than 10 % above (the safety property); the lower
        // bound is loose because a client starved of CPU by the parallel tests offers less (5-8 %
        // under the ideal was measured without extra load); exact counts: LimiterTests
        let expected = 50 * elapsed + 10
        #expect(total > admitted, "the limit was reached (\(total) requests sent)")
        #expect(Double(admitted) > expected * 0.6 && Double(admitted) < expected * 1.1, "admitted \(admitted), expected about \(expected)")
        print("token bucket 50/s: admitted \(admitted) of \(total) in \(elapsed) s")
        await fixture.stop()
    }

    @Test func slidingWindowOnTheWholeService() async throws {
        let fixture = try await ProxyFixture.start(backends: ["limit-window"]) { p in
            """
            services:
              s:
                rate_limit: { algorithm: sliding_window, limit: 5, window: 10s, key: service }
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["limit-window"]!) }]
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        for _ in 0..<5 { #expect(try await client.request(.GET, "/").status == .ok) }
        let limited = try await client.request(.GET, "/")
        #expect(limited.status == .tooManyRequests)
        #expect(limited.headers.first(name: "RateLimit-Limit") == "5")
        #expect(limited.body == "429 Too Many Requests\n")
        await client.close()
        await fixture.stop()
    }

    @Test func leakyBucketDelaysAndRejectsBeyondTheMaximumDelay() async throws {
        let fixture = try await ProxyFixture.start(backends: ["limit-leaky"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["limit-leaky"]!) }] } }
            routes:
              - { name: smooth, match: { path: /smooth }, service: s, rate_limit: { algorithm: leaky_bucket, rate: 10, max_delay: 1s, key: route } }
              - { name: strict, match: { path: /strict }, service: s, rate_limit: { algorithm: leaky_bucket, rate: 1, max_delay: 0s, key: route } }
            """
        }
        let client = try await fixture.client()
        let start = ContinuousClock.now
        for _ in 0..<4 { #expect(try await client.request(.POST, "/smooth", body: "x").status == .ok) }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(280), "4 requests at 10/s are spread over 300 ms, took \(elapsed)")
        #expect(try await client.request(.GET, "/strict").status == .ok)
        #expect(try await client.request(.GET, "/strict").status == .tooManyRequests, "no delay allowed: the excess is refused")
        await client.close()
        await fixture.stop()
    }

    @Test func maxInFlightRefusesWhenFull() async throws {
        let fixture = try await ProxyFixture.start(backends: ["limit-concurrency"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["limit-concurrency"]!) }] } }
            routes: [{ name: one-at-a-time, match: { path_prefix: /slow }, service: s, max_in_flight: 1 }]
            """
        }
        let first = try await fixture.client()
        let second = try await fixture.client()
        let slow = Task { try await first.request(.GET, "/slow/400") }
        for _ in 0..<100 where fixture.backends["limit-concurrency"]!.requests == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let refused = try await second.request(.GET, "/slow/1")
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.body == "503 Service Unavailable: too many requests in flight for route 'one-at-a-time'\n")
        #expect(await fixture.server.state().routes[0].limitedInFlight == 1)
        #expect(try await slow.value.status == .ok)
        #expect(try await second.request(.GET, "/slow/1").status == .ok, "the slot is free again")
        await first.close()
        await second.close()
        await fixture.stop()
    }
}

/// Admitted rates of the leaky bucket and the sliding window against the real clock.
@Suite(.realSockets) struct LimiterRateIntegrationTests {
    /// Sends requests one after another on one connection for `seconds`; returns (admitted, sent, elapsed seconds).
    /// Sends requests for `seconds` over `connections` keep-alive connections, each one request
    /// after another, and counts the 200s. Several connections keep the offered load above the
    /// limit even when the parallel tests starve the client of CPU; with more than one, run the
    /// proxy with one event loop (limits are kept per loop).
    static func hammer(_ fixture: ProxyFixture, seconds: Double, connections: Int = 1) async throws -> (Int, Int, Double) {
        let start = ContinuousClock.now
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for _ in 0..<connections {
                group.addTask {
                    let client = try await fixture.client()
                    var admitted = 0
                    var sent = 0
                    while ContinuousClock.now - start < .milliseconds(Int64(seconds * 1000)) {
                        if try await client.request(.GET, "/").status == .ok { admitted += 1 }
                        sent += 1
                    }
                    await client.close()
                    return (admitted, sent)
                }
            }
            return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
        let elapsed = ContinuousClock.now - start
        return (counts.0, counts.1, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    @Test func leakyBucketPacesRequestsAtTheRate() async throws {
        let fixture = try await ProxyFixture.start(backends: ["rate-leaky"]) { p in
            """
            services:
              s:
                rate_limit: { algorithm: leaky_bucket, rate: 20, max_delay: 200ms, key: service }
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["rate-leaky"]!) }]
            default: { service: s }
            """
        }
        let (admitted, sent, elapsed) = try await Self.hammer(fixture, seconds: 2)
        // one after another, every request waits for its slot: all are admitted, at 20/s (+1 for the
        // first): never more than 15 % above; at least 60 % (a CPU-starved client offers less)
        let expected = 20 * elapsed + 1
        #expect(sent == admitted, "nothing refused: waiting requests stay within max_delay")
        #expect(Double(admitted) > expected * 0.6 && Double(admitted) < expected * 1.15, "admitted \(admitted), expected about \(expected)")
        await fixture.stop()
    }

    @Test func slidingWindowAdmitsTheLimitPerWindow() async throws {
        let fixture = try await ProxyFixture.start(backends: ["rate-window"], workers: 1) { p in
            """
            services:
              s:
                rate_limit: { algorithm: sliding_window, limit: 40, window: 500ms, key: service }
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["rate-window"]!) }]
            default: { service: s }
            """
        }
        let (admitted, sent, elapsed) = try await Self.hammer(fixture, seconds: 1.5, connections: 4)
        // 40 per 500 ms = 80/s, plus one window's worth at the start (there is no previous window
        // yet): never more than 15 % above; the lower bound is loose because a window in which this
        // client stalls cannot be made up later — exact counts are checked with an injected clock in LimiterTests
        let expected = 80 * elapsed + 40
        #expect(sent > admitted, "the limit was reached")
        #expect(Double(admitted) > expected * 0.6 && Double(admitted) < expected * 1.15, "admitted \(admitted) of \(sent), expected about \(expected)")
        await fixture.stop()
    }
}
