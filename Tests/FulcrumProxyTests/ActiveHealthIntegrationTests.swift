import FulcrumCore
import NIOConcurrencyHelpers
@testable import FulcrumHealth
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import RealSockets

/// Active health checks against real backends that are stopped and started again.
@Suite(.realSockets) struct ActiveHealthIntegrationTests {
    /// Before, a reload that added a node to the service made a node that probes had marked
    /// down take traffic again at once.
    @Test func aNodeMarkedDownStaysOutOfTrafficWhenItsServiceChanges() async throws {
        let dead = try await FailureIntegrationTests.deadPort()
        func services(_ p: [String: Int], extra: String = "") -> String {
            """
            services:
              s:
                health_check: { type: tcp, interval: 1h }
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(p["reload-a"]!) }
                  - { name: b, host: 127.0.0.1, port: \(dead) }
                  \(extra)
            default: { service: s }
            """
        }
        var ports: [String: Int] = [:]
        let fixture = try await ProxyFixture.start(backends: ["reload-a", "reload-d"]) { p in
            ports = p
            return services(p)
        }
        for _ in 0..<3 { fixture.server.recordProbe(service: "s", node: "b", success: false, detail: "refused") }
        #expect(await fixture.server.state().summary.contains("s/b down"))
        try fixture.reload(services(ports, extra: "- { name: d, host: 127.0.0.1, port: \(ports["reload-d"]!) }"), generation: 2)
        let client = try await fixture.client()
        for _ in 0..<30 { #expect(try await client.request(.POST, "/", body: "x").status == .ok) }
        #expect(await fixture.server.traffic(seconds: 1).nodes.first { $0.name == "b" }?.connectErrors == 0, "b was tried")
        #expect(await fixture.server.state().summary.contains("s/b down"))
        await client.close()
        await fixture.stop()
    }

    @Test func aKilledNodeIsTakenOutAndARestartedOneComesBack() async throws {
        let interval = 300
        let fixture = try await ProxyFixture.start(backends: ["probe-a", "probe-b"]) { p in
            """
            services:
              s:
                health_check: { type: http, path: /status/200, interval: \(interval)ms, timeout: 250ms, healthy_threshold: 2, unhealthy_threshold: 2 }
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(p["probe-a"]!) }
                  - { name: b, host: 127.0.0.1, port: \(p["probe-b"]!) }
            default: { service: s }
            """
        }
        let server = fixture.server
        let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { service, node, result in
            server.recordProbe(service: service, node: node, success: result.success, detail: result.detail)
        }
        checker.apply(server.runtime.config, nodeTLS: server.runtime.nodeTLS)
        #expect(checker.probedNodes == 2)
        let portB = fixture.backends["probe-b"]!.port
        let client = try await fixture.client()
        // both nodes serve at first
        var seen = Set<String>()
        for _ in 0..<4 { seen.insert(try await client.request(.GET, "/").backend ?? "?") }
        #expect(seen == ["probe-a", "probe-b"])

        await fixture.backends["probe-b"]!.stop()
        let killed = ContinuousClock.now
        // GET is retried on the other node, so clients see no failure even before detection;
        // detection shows as node b no longer being tried: wait until the probes mark it down
        var detectedAfter: Duration? = nil
        while ContinuousClock.now - killed < .seconds(3) {
            let health = await server.state().summary
            if health.contains("s/b down") { detectedAfter = ContinuousClock.now - killed; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let detection = try #require(detectedAfter, "node b was never marked down")
        // ideally at most interval × (unhealthy threshold + 1) (the kill can fall just after a probe)
        // plus one probe timeout; two more intervals absorb probes starved by the other tests that
        // run in parallel on 2 cores (the figures without load are measured separately)
        #expect(detection < .milliseconds(interval * 5 + 250), "detected after \(detection)")
        // a node marked down is not tried: no new failed connection to b (a refused connection is
        // retried on a, so the responses alone would not show it)
        func connectErrorsToB() async -> Int64 {
            await server.traffic(seconds: 1).nodes.first { $0.name == "b" }?.connectErrors ?? -1
        }
        let errorsBefore = await connectErrorsToB()
        for _ in 0..<20 {
            let response = try await client.request(.POST, "/", body: "x")
            #expect(response.status == .ok)
            #expect(response.backend == "probe-a")
        }
        #expect(await connectErrorsToB() == errorsBefore)

        let restarted = try await TestBackend.start("probe-b-again", port: portB)
        let back = ContinuousClock.now
        var cameBackAfter: Duration? = nil
        while ContinuousClock.now - back < .seconds(3) {
            if await server.state().summary.contains("s/b up") { cameBackAfter = ContinuousClock.now - back; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let recovery = try #require(cameBackAfter, "node b never came back")
        // ideally at most interval × (healthy threshold + 2): one interval of phase, and one probe
        // that may have raced the restart; two more intervals absorb load, as above
        #expect(recovery < .milliseconds(interval * 6 + 250), "back after \(recovery)")
        seen = []
        for _ in 0..<4 { seen.insert(try await client.request(.GET, "/").backend ?? "?") }
        #expect(seen == ["probe-a", "probe-b-again"])
        print("active health: detection \(detection), recovery \(recovery) (interval \(interval) ms, thresholds 2/2)")

        checker.stop()
        await client.close()
        await restarted.stop()
        await fixture.stop()
    }

    @Test func probeJudgementFollowsTheCheck() {
        var check = ActiveHealthCheck()
        check.expectedStatuses = [200...299, 404...404]
        check.bodyContains = "ready"
        func judge(_ text: String) -> ProbeResult { Self.judge(text, check: check) }
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready") == ProbeResult(success: true, detail: "status 200"))
        #expect(judge("HTTP/1.1 404 Not Found\r\n\r\nstill ready") == ProbeResult(success: true, detail: "status 404"))
        #expect(judge("HTTP/1.1 200 OK\r\n\r\nbooting") == ProbeResult(success: false, detail: "body does not contain 'ready'"))
        #expect(judge("HTTP/1.1 503 Service Unavailable\r\n\r\nready") == ProbeResult(success: false, detail: "status 503 not expected"))
        #expect(judge("SSH-2.0-OpenSSH") == ProbeResult(success: false, detail: "not an HTTP response"))
        #expect(judge("") == ProbeResult(success: false, detail: "no response"))
        #expect(Self.judge("", check: check, timedOut: true) == ProbeResult(success: false, detail: "timeout"))
    }

    /// What a probe concludes when the node sends `text` and closes the connection (or the probe
    /// times out, `timedOut`).
    static func judge(_ text: String, check: ActiveHealthCheck, timedOut: Bool = false) -> ProbeResult {
        var response = ProbeResponse(check: check, toHEAD: false)
        var buffer = ByteBuffer(string: text)
        response.receive(&buffer)
        return response.verdict(timedOut: timedOut)
    }

    /// Before, the probe had a reader of its own that looked for the status line and searched
    /// every byte after the first empty line: it judged an interim 100 as the status, found the
    /// text past the end of a body, and took a response with two lengths as healthy.
    @Test func probesReadResponsesAsTheProxyReadsThem() {
        var check = ActiveHealthCheck()
        check.bodyContains = "ready"
        func judge(_ text: String) -> ProbeResult { Self.judge(text, check: check) }
        #expect(judge("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready")
            == ProbeResult(success: true, detail: "status 200"))
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcready")
            == ProbeResult(success: false, detail: "body does not contain 'ready'"))
        #expect(judge("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nready\r\n0\r\n\r\n")
            == ProbeResult(success: true, detail: "status 200"))
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nready")
            == ProbeResult(success: false, detail: "invalid response: conflicting Content-Length"))
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Le") == ProbeResult(success: false, detail: "incomplete response head"))
    }

    @Test func probeRequestsAreBuiltFromTheCheck() {
        var check = ActiveHealthCheck()
        check.path = "/healthz"
        check.headers = [ValueCondition(name: "X-Probe", values: ["1"])]
        #expect(check.requestText(nodeHost: "10.0.0.1", nodePort: 8080)
            == "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: fulcrum-health-check\r\nConnection: close\r\nX-Probe: 1\r\n\r\n")
        check.rawRequest = "GET / HTTP/1.0\r\nHost: app\nX-Mixed: 1\r\n"
        #expect(check.requestText(nodeHost: "h", nodePort: 1) == "GET / HTTP/1.0\r\nHost: app\r\nX-Mixed: 1\r\n\r\n")
    }
}

@Suite(.realSockets) struct HealthCheckerReloadTests {
    static func config(_ yaml: String) throws -> FulcrumConfig {
        try FulcrumConfig.parse("listen: [{ port: 0 }]\n" + yaml)
    }

    @Test func probeLoopsFollowTheConfiguration() throws {
        let seen = NIOLockedValueBox<Set<String>>([])
        let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { service, node, _ in
            _ = seen.withLockedValue { $0.insert("\(service)/\(node)") }
        }
        checker.apply(try Self.config("""
            services:
              s: { health_check: { type: tcp, interval: 1h, timeout: 1s }, nodes: [{ name: a, host: 127.0.0.1, port: 9 }, { name: b, host: 127.0.0.1, port: 9 }] }
              t: { nodes: [{ name: c, host: 127.0.0.1, port: 9 }] }
            """), nodeTLS: [])
        #expect(checker.probedNodes == 2, "only services with a health_check are probed")
        checker.apply(try Self.config("""
            services:
              s: { health_check: { type: tcp, interval: 1h, timeout: 1s }, nodes: [{ name: a, host: 127.0.0.1, port: 9 }, { name: d, host: 127.0.0.1, port: 9 }] }
              t: { health_check: { type: tcp, interval: 1h, timeout: 1s }, nodes: [{ name: c, host: 127.0.0.1, port: 9 }] }
            """), nodeTLS: [])
        #expect(checker.probedNodes == 3, "b forgotten, d and c added")
        checker.apply(try Self.config("services: { s: { nodes: [{ name: a, host: 127.0.0.1, port: 9 }] } }"), nodeTLS: [])
        #expect(checker.probedNodes == 0)
        checker.stop()
    }

    @Test func aSuccessfulProbeEndsAPassiveEjection() async throws {
        let fixture = try await ProxyFixture.start(backends: ["reinstate-a", "reinstate-b"]) { p in
            """
            services:
              s:
                passive_health: { consecutive_failures: 2, base_ejection: 60s, failure_statuses: [500] }
                health_check: { path: /status/200, interval: 200ms, timeout: 150ms }
                nodes:
                  - { name: a, host: 127.0.0.1, port: \(p["reinstate-a"]!) }
                  - { name: b, host: 127.0.0.1, port: \(p["reinstate-b"]!) }
            default: { service: s }
            """
        }
        let server = fixture.server
        let client = try await fixture.client()
        // /status/500 fails on both nodes: the first to reach two failures is ejected (the cap keeps the other)
        for _ in 0..<4 { _ = try await client.request(.GET, "/status/500") }
        let ejected = await server.state().services[0].nodes.filter { $0.ejectedFor != nil }
        #expect(ejected.count == 1, "one node ejected for 60 s")
        let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { service, node, result in
            server.recordProbe(service: service, node: node, success: result.success, detail: result.detail)
        }
        checker.apply(server.runtime.config, nodeTLS: server.runtime.nodeTLS)
        var reinstated = false
        for _ in 0..<200 {
            if await server.state().services[0].nodes.allSatisfy({ $0.ejectedFor == nil }) { reinstated = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(reinstated, "the node's /status/200 probe succeeded long before the 60 s ejection ended")
        checker.stop()
        await client.close()
        await fixture.stop()
    }
}
