import Testing
@testable import FulcrumCore

@Suite struct RolloutTests {
    static let rollout = Rollout(
        canary: "canary", steps: [5, 25, 100], stepTime: .seconds(60),
        guardRails: .init(minimumRequests: 50, maxErrorRatio: 0.05, maxP99Ratio: 2))
    static let healthy = RolloutStep.Figures(requests: 80, errorRatio: 0.01, p99Microseconds: 20_000)
    static let baseline = RolloutStep.Figures(requests: 900, errorRatio: 0.01, p99Microseconds: 15_000)

    @Test func itAdvancesStepByStepWhenTimeAndRequestsAreThere() {
        #expect(RolloutStep.decide(Self.rollout, canaryWeight: 0, heldFor: .seconds(0), canary: .init(requests: 0, errorRatio: 0, p99Microseconds: nil), baseline: Self.baseline) == .hold("step time not over"))
        guard case .advance(to: 5, _) = RolloutStep.decide(Self.rollout, canaryWeight: 0, heldFor: .seconds(61), canary: .init(requests: 0, errorRatio: 0, p99Microseconds: nil), baseline: Self.baseline) else {
            Issue.record("0 % advances to the first step once its time is over")
            return
        }
        #expect(RolloutStep.decide(Self.rollout, canaryWeight: 5, heldFor: .seconds(30), canary: Self.healthy, baseline: Self.baseline) == .hold("step time not over"))
        let few = RolloutStep.Figures(requests: 10, errorRatio: 0, p99Microseconds: 1000)
        #expect(RolloutStep.decide(Self.rollout, canaryWeight: 5, heldFor: .seconds(90), canary: few, baseline: Self.baseline) == .hold("waiting for 50 canary requests (10 so far)"))
        guard case .advance(to: 25, let why) = RolloutStep.decide(Self.rollout, canaryWeight: 5, heldFor: .seconds(60), canary: Self.healthy, baseline: Self.baseline) else {
            Issue.record("5 % advances to 25 %")
            return
        }
        #expect(why == "guard rails held at 5 % (canary: 80 requests, 1.0 % 5xx, p99 20.0 ms; baseline: 900 requests, 1.0 % 5xx, p99 15.0 ms)")
        guard case .advance(to: 100, _) = RolloutStep.decide(Self.rollout, canaryWeight: 25, heldFor: .seconds(60), canary: Self.healthy, baseline: Self.baseline) else {
            Issue.record("25 % advances to 100 %")
            return
        }
        guard case .promote = RolloutStep.decide(Self.rollout, canaryWeight: 100, heldFor: .seconds(60), canary: Self.healthy, baseline: Self.baseline) else {
            Issue.record("100 % held is promoted")
            return
        }
    }

    @Test func aBrokenGuardRailRollsBackAtOnceWithTheFigures() {
        let failing = RolloutStep.Figures(requests: 60, errorRatio: 0.2, p99Microseconds: 20_000)
        #expect(RolloutStep.decide(Self.rollout, canaryWeight: 25, heldFor: .seconds(1), canary: failing, baseline: Self.baseline)
            == .rollBack("guard rail broken at 25 %: 5xx ratio 20.0 % above 5.0 % (canary: 60 requests, 20.0 % 5xx, p99 20.0 ms; baseline: 900 requests, 1.0 % 5xx, p99 15.0 ms)"))
        let slow = RolloutStep.Figures(requests: 60, errorRatio: 0, p99Microseconds: 40_000)
        guard case .rollBack(let why) = RolloutStep.decide(Self.rollout, canaryWeight: 5, heldFor: .seconds(1), canary: slow, baseline: Self.baseline) else {
            Issue.record("a p99 over twice the baseline's rolls back")
            return
        }
        #expect(why.contains("p99 40.0 ms more than 2.0 times the baseline's 15.0 ms"))
        // too few canary requests to judge: hold, do not roll back on noise
        let noisy = RolloutStep.Figures(requests: 3, errorRatio: 1, p99Microseconds: 90_000)
        #expect(RolloutStep.decide(Self.rollout, canaryWeight: 5, heldFor: .seconds(1), canary: noisy, baseline: Self.baseline) == .hold("step time not over"))
    }

    @Test func aPausedRolloutHolds() {
        var paused = Self.rollout
        paused.paused = true
        let failing = RolloutStep.Figures(requests: 600, errorRatio: 0.5, p99Microseconds: 1)
        #expect(RolloutStep.decide(paused, canaryWeight: 25, heldFor: .seconds(600), canary: failing, baseline: Self.baseline) == .hold("paused"))
    }

    @Test func aRolloutIsParsedAndChecked() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services: { v1: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }] }, v2: { nodes: [{ name: b, host: 127.0.0.1, port: 2 }] } }
            routes:
              - name: api
                split:
                  targets: [{ service: v1, weight: 100 }, { name: canary, service: v2, weight: 0 }]
                  rollout: { canary: canary, steps: [10, 100], step_time: 30s, guard: { min_requests: 20, max_p99: 250ms } }
            """)
        let rollout = try #require(config.routes[0].split?.rollout)
        #expect(rollout == Rollout(canary: "canary", steps: [10, 100], stepTime: .seconds(30), guardRails: .init(minimumRequests: 20, maxErrorRatio: 0.05, maxP99: .milliseconds(250))))
        #expect {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services: { v1: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }] }, v2: { nodes: [{ name: b, host: 127.0.0.1, port: 2 }] } }
                routes:
                  - name: api
                    split:
                      targets: [{ service: v1, weight: 100 }, { service: v2, weight: 0 }]
                      rollout: { canary: v3, steps: [50, 20], guard: { max_error_ratio: 2 } }
                """)
        } throws: { error in
            let paths = (error as? ConfigError)?.issues.map(\.path) ?? []
            return paths == ["routes[0].split.rollout.canary", "routes[0].split.rollout.steps", "routes[0].split.rollout.guard.max_error_ratio"]
        }
    }
}
