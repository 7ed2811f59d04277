import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Upstream failures: dead nodes, slow nodes, clients that leave.
@Suite(.realSockets) struct FailureIntegrationTests {
    /// A port that refuses connections for as long as this process runs: a socket bound to it
    /// that never listens. Unlike a closed listener's port, no other test can take it meanwhile.
    static func deadPort() async throws -> Int {
        boundLoopbackPort().port  // the descriptor stays open on purpose
    }

    @Test func requestsToANodeThatCannotBeReachedAreRetriedOnAnother() async throws {
        let dead = try await Self.deadPort()
        let fixture = try await ProxyFixture.start(backends: ["retry-live"]) { p in
            """
            services:
              s:
                nodes:
                  - { name: dead, host: 127.0.0.1, port: \(dead) }
                  - { name: live, host: 127.0.0.1, port: \(p["retry-live"]!) }
              dead-only: { nodes: [{ name: dead, host: 127.0.0.1, port: \(dead) }] }
            routes:
              - { name: pinned-dead, match: { path_prefix: /pinned }, service: s, node: dead }
              - { name: only-dead, match: { path_prefix: /only-dead }, service: dead-only }
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        for _ in 0..<20 {
            let response = try await client.request(.GET, "/")
            #expect(response.status == .ok)
            #expect(response.backend == "retry-live")
        }
        // a POST whose connection could not be opened sent nothing: it is retried too (before,
        // the round robin turn of the dead node gave 502 to every other POST)
        for _ in 0..<4 {
            let response = try await client.request(.POST, "/upload", body: "x")
            #expect(response.status == .ok && response.body == "retry-live received 1\n")
        }
        // a pinned route never moves to another node
        let pinned = try await client.request(.GET, "/pinned")
        #expect(pinned.status == .badGateway)
        #expect(pinned.body.contains("502"))
        let onlyDead = try await client.request(.GET, "/only-dead")
        #expect(onlyDead.status == .badGateway)
        await client.close()
        await fixture.stop()
    }

    @Test func theAccessLogShowsEachRequestAndItsRetry() async throws {
        let dead = try await Self.deadPort()
        let lines = NIOLockedValueBox<[String]>([])
        let access = Logger(label: "test.access") { _ in CapturingLogHandler(lines: lines) }
        let fixture = try await ProxyFixture.start(backends: ["logged"], accessLog: access) { p in
            """
            services:
              s: { nodes: [{ name: dead, host: 127.0.0.1, port: \(dead) }, { name: live, host: 127.0.0.1, port: \(p["logged"]!) }] }
              t: { nodes: [{ name: live, host: 127.0.0.1, port: \(p["logged"]!) }] }
            routes: [{ name: plain, match: { path: /plain }, service: t }]
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/plain?x=1", headers: [("X-Request-ID", "r-1")]).status == .ok)
        // round robin starts with the dead node: the GET is retried on the live one
        #expect(try await client.request(.GET, "/other", headers: [("X-Request-ID", "r-2")]).status == .ok)
        await client.close()
        await fixture.stop()
        let log = lines.withLockedValue { $0 }
        #expect(log.contains { $0.hasPrefix("127.0.0.1 \"GET /plain?x=1\" 200 ") && $0.hasSuffix("route=plain node=live id=r-1") }, "\(log)")
        #expect(log.contains { $0.contains("\"GET /other\" 200 ") && $0.hasSuffix("route=default node=live id=r-2 retried_from=dead") }, "\(log)")
    }

    @Test func aFailedNodeWhileTheBodyIsStillArrivingAnswers502AndCloses() async throws {
        let dead = try await Self.deadPort()
        let fixture = try await ProxyFixture.start(backends: []) { _ in
            "services: { s: { nodes: [{ name: dead, host: 127.0.0.1, port: \(dead) }] } }\ndefault: { service: s }"
        }
        let started = ContinuousClock.now
        let result = try await RawClient.exchange(
            port: fixture.port, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nfirst bytes", timeout: .seconds(5))
        #expect(result.text.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), "\(result.text)")
        #expect(result.text.contains("Connection: close\r\n"))
        #expect(result.serverClosed)
        #expect(ContinuousClock.now - started < .seconds(2), "closed at once, not after a timeout")
        await fixture.stop()
    }

    @Test func aSlowNodeGets504AfterTheResponseTimeout() async throws {
        let fixture = try await ProxyFixture.start(backends: ["slow"], workers: 1) { p in
            """
            timeouts: { upstream_response: 200ms }
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["slow"]!) }] } }
            default: { service: s }
            errors: { 504: { body: "too slow\\n" } }
            """
        }
        let client = try await fixture.client()
        let started = ContinuousClock.now
        let response = try await client.request(.GET, "/slow/2000")
        let elapsed = ContinuousClock.now - started
        #expect(response.status == .gatewayTimeout)
        #expect(response.body == "too slow\n")
        #expect(elapsed < .milliseconds(1500), "answered after \(elapsed)")
        // a fast request on a new connection still works
        let other = try await fixture.client()
        #expect(try await other.request(.GET, "/slow/10").status == .ok)
        // (one event loop, so one timer) the timer fires for the earliest deadline, then re-arms for a
        // later one: two overlapping slow requests, 50 ms apart, both get their 504
        let third = try await fixture.client()
        async let first = other.request(.GET, "/slow/2000")
        try await Task.sleep(for: .milliseconds(50))
        let secondStart = ContinuousClock.now
        let second = try await third.request(.GET, "/slow/2000")
        #expect(try await first.status == .gatewayTimeout)
        #expect(second.status == .gatewayTimeout)
        #expect(ContinuousClock.now - secondStart < .milliseconds(1500))
        await client.close()
        await other.close()
        await third.close()
        await fixture.stop()
    }

    @Test func aClientThatLeavesReleasesItsUpstreamConnection() async throws {
        let fixture = try await ProxyFixture.start(backends: ["abort"]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["abort"]!) }] } }\ndefault: { service: s }"
        }
        let backend = fixture.backends["abort"]!
        let client = try await fixture.client()
        let pending = Task { try await client.request(.GET, "/slow/3000") }
        // wait until the request reached the backend
        for _ in 0..<100 where backend.requests == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(backend.requests == 1)
        #expect(backend.connections == 1)
        await client.close()
        _ = try? await pending.value
        for _ in 0..<100 where backend.connections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(backend.connections == 0, "the proxy closed its upstream connection long before the 3 s answer")
        #expect(await fixture.server.state().services[0].nodes[0].inFlight == 0)
        await fixture.stop()
    }
}
