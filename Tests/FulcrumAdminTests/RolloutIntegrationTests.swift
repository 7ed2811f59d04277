import Foundation
import FulcrumAdmin
import FulcrumCore
import FulcrumStore
import Testing
import RealSockets

/// Progressive rollouts over real backends: the controller advances a healthy canary to
/// promotion and rolls a failing one back by itself, each step a version with the figures.
@Suite(.realSockets) struct RolloutIntegrationTests {
    /// Adds service v2 (node b, or a closed port) and starts a rollout of it on route api, at 0 %.
    static func startRollout(_ fixture: AdminFixture, steps: String = "[50, 100]", canaryPort: Int? = nil) async throws {
        let b = canaryPort ?? fixture.backends[1].port
        #expect(try await fixture.call("POST", "/api/v1/services", ifMatch: "*", body: #"{"name":"v2","nodes":[{"name":"b2","host":"127.0.0.1","port":\#(b)}]}"#).status == 201)
        let route = """
            {"name":"api","match":{"path_prefix":"/api/"},"split":{"targets":[{"service":"web","weight":100},{"name":"canary","service":"v2","weight":0}],
             "rollout":{"canary":"canary","steps":\(steps),"step_time":"1s","guard":{"min_requests":20,"max_error_ratio":0.1}}}}
            """
        let reply = try await fixture.call("PUT", "/api/v1/routes/api", ifMatch: "*", body: route)
        #expect(reply.status == 200, "\(reply.text)")
    }

    /// Sends requests through the proxy until stopped; counts answers by backend.
    final class Load: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int] = [:]
        private var stopping = false
        private var task: Task<Void, Never>?

        init(_ fixture: AdminFixture) {
            task = Task {
                while !self.lock.withLock({ self.stopping }) {
                    let backend = (try? await fixture.proxied("/api/load")) ?? "error"
                    self.lock.withLock { self.counts[backend, default: 0] += 1 }
                    try? await Task.sleep(for: .milliseconds(3))
                }
            }
        }

        /// Ends the loop after its current request. The task is not cancelled: cancelling a task
        /// inside `URLSession.data(for:)` can deadlock with the request completing at the same
        /// moment (swift-corelibs-foundation takes its queue inside the task's cancellation lock).
        func stop() async {
            lock.withLock { stopping = true }
            await task?.value
        }
    }

    static func waitFor(_ what: String, seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func aHealthyCanaryAdvancesStepByStepToPromotion() async throws {
        let fixture = try await AdminFixture()
        try await Self.startRollout(fixture)
        let load = Load(fixture)
        let rolling = Task { await fixture.rollouts.run(every: .milliseconds(200)) }
        try await Self.waitFor("promotion") {
            let route = try await fixture.call("GET", "/api/v1/routes/api").json
            return route?["split"] == nil && route?["service"] == .string("v2")
        }
        rolling.cancel()
        await load.stop()
        let steps = try await fixture.store.versions(limit: 20, before: nil).filter { $0.actor == "rollout" }.map(\.message).reversed()
        #expect(steps.count == 3, "\(steps)")
        #expect(Array(steps)[0].hasPrefix("rollout of canary on route api: 50 % — guard rails held at 0 %"))
        #expect(Array(steps)[1].hasPrefix("rollout of canary on route api: 100 % — guard rails held at 50 % (canary: "))
        #expect(Array(steps)[2].hasPrefix("rollout of canary on route api: promoted — the canary held at 100 %"))
        #expect(try await fixture.proxied("/api/x") == "b")
        let audit = try await fixture.store.auditEntries(AuditQuery(actor: "rollout"))
        #expect(audit.count == 3 && audit.allSatisfy { $0.version != nil && $0.record.target == "routes/api" })
        try await fixture.stop()
    }

    @Test func aCanaryThatStartsReturning500sIsRolledBackAndGetsNoMoreRequests() async throws {
        let fixture = try await AdminFixture()
        let canary = try await AdjustableBackend.start(name: "failing-canary")
        try await Self.startRollout(fixture, steps: "[50, 75, 100]", canaryPort: canary.port)
        let load = Load(fixture)
        let rolling = Task { await fixture.rollouts.run(every: .milliseconds(200)) }
        try await Self.waitFor("the canary at 50 %") {
            try await fixture.call("GET", "/api/v1/routes/api")["split", "targets"]?.items.last?["weight"] == .int(50)
        }
        canary.responseStatus = .internalServerError  // the new version starts failing
        try await Self.waitFor("the rollback") {
            try await fixture.call("GET", "/api/v1/routes/api")["split", "rollout", "paused"] == .bool(true)
        }
        rolling.cancel()
        await load.stop()
        let route = try await fixture.call("GET", "/api/v1/routes/api")
        #expect(route["split", "targets"]?.items.map { $0["weight"] } == [.int(100), .int(0)])
        let rollback = try #require(try await fixture.store.activeVersion())
        #expect(rollback.actor == "rollout" && rollback.message.contains("rolled back to 0 % — guard rail broken at 50 %: 5xx ratio"))
        #expect(rollback.message.contains("(canary: "), "the figures that caused it")
        let status = try await fixture.call("GET", "/api/v1/routes/api/rollout")
        #expect(status["status", "verdict"]?.stringValue?.hasPrefix("paused") == true || status["status", "verdict"]?.stringValue?.hasPrefix("rolled back") == true)

        // no request reaches the canary once the rollback is recorded
        try await Task.sleep(for: .milliseconds(100))
        let canaryBefore = await fixture.server.traffic(seconds: 1).services.first { $0.name == "v2" }?.traffic.totals.requestCount ?? -1
        for _ in 0..<50 { #expect(try await fixture.proxied("/api/after") == "a") }
        let versions = try await fixture.store.versions(limit: 20, before: nil).filter { $0.actor == "rollout" }.map(\.message)
        #expect(versions.count == 2 && versions[1].contains(": 50 % — guard rails held at 0 %"), "advanced once, then rolled back: \(versions)")
        let canaryAfter = await fixture.server.traffic(seconds: 1).services.first { $0.name == "v2" }?.traffic.totals.requestCount ?? -2
        #expect(canaryAfter == canaryBefore)

        // the operator ends it: the canary leaves the route
        let aborted = try await fixture.call("POST", "/api/v1/routes/api/rollout/abort?message=v2+is+broken", ifMatch: "*")
        #expect(aborted.status == 200)
        let after = try await fixture.call("GET", "/api/v1/routes/api")
        #expect(after["split"] == nil && after["service"] == .string("web"))
        #expect(try await fixture.call("POST", "/api/v1/routes/api/rollout/pause", ifMatch: "*").status == 404)
        try await canary.stop()
        try await fixture.stop()
    }

    @Test func aCanaryThatSlowsDownIsRolledBack() async throws {
        let fixture = try await AdminFixture()
        let canary = try await AdjustableBackend.start(name: "slow-canary")
        #expect(try await fixture.call("POST", "/api/v1/services", ifMatch: "*", body: #"{"name":"v2","nodes":[{"name":"c","host":"127.0.0.1","port":\#(canary.port)}]}"#).status == 201)
        let route = """
            {"name":"api","match":{"path_prefix":"/api/"},"split":{"targets":[{"service":"web","weight":50},{"name":"canary","service":"v2","weight":50}],
             "rollout":{"canary":"canary","steps":[50,100],"step_time":"30s","guard":{"min_requests":20,"max_p99":"40ms"}}}}
            """
        #expect(try await fixture.call("PUT", "/api/v1/routes/api", ifMatch: "*", body: route).status == 200)
        let load = Load(fixture)
        let rolling = Task { await fixture.rollouts.run(every: .milliseconds(200)) }
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await fixture.call("GET", "/api/v1/routes/api")["split", "rollout", "paused"] == nil, "a fast canary holds")
        canary.delayMilliseconds = 80  // the new version slows down
        try await Self.waitFor("the rollback") {
            try await fixture.call("GET", "/api/v1/routes/api")["split", "rollout", "paused"] == .bool(true)
        }
        rolling.cancel()
        await load.stop()
        let rollback = try #require(try await fixture.store.activeVersion())
        #expect(rollback.message.contains("guard rail broken at 50 %: p99 "), "\(rollback.message)")
        #expect(rollback.message.contains("ms above 40.0 ms"))
        for _ in 0..<20 { #expect(try await fixture.proxied("/api/after") == "a") }
        try await canary.stop()
        try await fixture.stop()
    }

    @Test func operatorsPauseResumeAndPromote() async throws {
        let fixture = try await AdminFixture()
        try await Self.startRollout(fixture)
        #expect(try await fixture.call("POST", "/api/v1/routes/api/rollout/pause", ifMatch: "*").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/routes/api/rollout")["settings", "paused"] == .bool(true))
        await fixture.rollouts.tick()
        try await Task.sleep(for: .milliseconds(1100))
        await fixture.rollouts.tick()
        #expect(try await fixture.call("GET", "/api/v1/routes/api/rollout")["status", "verdict"] == .string("paused"))
        #expect(try await fixture.call("POST", "/api/v1/routes/api/rollout/resume", as: .viewer, ifMatch: "*").status == 403)
        #expect(try await fixture.call("POST", "/api/v1/routes/api/rollout/resume", ifMatch: "*").status == 200)
        #expect(try await fixture.call("GET", "/api/v1/routes/api/rollout")["settings", "paused"] == nil)
        let promoted = try await fixture.call("POST", "/api/v1/routes/api/rollout/promote?message=ship+it", ifMatch: "*")
        #expect(promoted.status == 200 && promoted["version", "message"] == .string("ship it"))
        #expect(try await fixture.call("GET", "/api/v1/routes/api")["service"] == .string("v2"))
        try await fixture.stop()
    }
}
