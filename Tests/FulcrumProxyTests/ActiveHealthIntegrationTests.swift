import FulcrumCore
import FulcrumHealth
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Active health checks against real backends that are stopped and started again.
@Suite struct ActiveHealthIntegrationTests {
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
        checker.apply(server.runtime.config)
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
        for _ in 0..<20 {
            let response = try await client.request(.POST, "/", body: "x")  // not retried: would fail if b were tried
            #expect(response.status == .ok)
            #expect(response.backend == "probe-a")
        }

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
        func judge(_ text: String) -> ProbeResult { HealthProbe.judge(Array(text.utf8), check: check) }
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready") == ProbeResult(success: true, detail: "status 200"))
        #expect(judge("HTTP/1.1 404 Not Found\r\n\r\nstill ready") == ProbeResult(success: true, detail: "status 404"))
        #expect(judge("HTTP/1.1 200 OK\r\n\r\nbooting") == ProbeResult(success: false, detail: "body does not contain 'ready'"))
        #expect(judge("HTTP/1.1 503 Service Unavailable\r\n\r\nready") == ProbeResult(success: false, detail: "status 503 not expected"))
        #expect(judge("SSH-2.0-OpenSSH") == ProbeResult(success: false, detail: "not an HTTP response"))
        #expect(judge("") == ProbeResult(success: false, detail: "no response"))
        #expect(HealthProbe.judge([], check: check, timedOut: true) == ProbeResult(success: false, detail: "timeout"))
    }

    @Test func probeRequestsAreBuiltFromTheCheck() {
        var check = ActiveHealthCheck()
        check.path = "/healthz"
        check.headers = [ValueCondition(name: "X-Probe", values: ["1"])]
        #expect(check.requestText(nodeHost: "10.0.0.1", nodePort: 8080)
            == "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: fulcrum-health-check\r\nConnection: close\r\nX-Probe: 1\r\n\r\n")
        check.rawRequest = "GET / HTTP/1.0\nHost: app\n"
        #expect(check.requestText(nodeHost: "h", nodePort: 1) == "GET / HTTP/1.0\r\nHost: app\r\n\r\n")
    }
}
