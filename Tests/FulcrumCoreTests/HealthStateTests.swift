import Testing
@testable import FulcrumCore

@Suite struct HealthStateTests {
    let second: UInt64 = 1_000_000_000

    @Test func probeHealthNeedsConsecutiveResultsToChangeState() {
        let thresholds = ProbeHealth.Thresholds(healthy: 2, unhealthy: 3)
        var node = ProbeHealth.up(failures: 0)
        #expect(node.record(success: false, thresholds: thresholds) == nil)
        #expect(node.record(success: false, thresholds: thresholds) == nil)
        #expect(node.record(success: true, thresholds: thresholds) == nil, "a success breaks the failure streak")
        #expect(node == .up(failures: 0))
        #expect(node.record(success: false, thresholds: thresholds) == nil)
        #expect(node.record(success: false, thresholds: thresholds) == nil)
        #expect(node.record(success: false, thresholds: thresholds) == .wentDown)
        #expect(!node.isUp)
        #expect(node.record(success: true, thresholds: thresholds) == nil)
        #expect(node.record(success: false, thresholds: thresholds) == nil, "a failure breaks the success streak")
        #expect(node == .down(successes: 0))
        #expect(node.record(success: true, thresholds: thresholds) == nil)
        #expect(node.record(success: true, thresholds: thresholds) == .cameUp)
        #expect(node.isUp)
    }

    @Test func thresholdsOfOneFlipAtOnce() {
        let thresholds = ProbeHealth.Thresholds(healthy: 1, unhealthy: 1)
        var node = ProbeHealth.up(failures: 0)
        #expect(node.record(success: false, thresholds: thresholds) == .wentDown)
        #expect(node.record(success: true, thresholds: thresholds) == .cameUp)
    }

    @Test func outlierEjectionDoublesUpToTheMaximum() {
        let policy = OutlierDetection.Policy(consecutiveFailures: 3, baseEjection: .seconds(10), maxEjection: .seconds(25), maxEjectedPercent: 100)
        var detection = OutlierDetection(nodeCount: 2, policy: policy)
        var now: UInt64 = 100 * second
        #expect(detection.recordFailure(0, now: now) == nil)
        #expect(detection.recordFailure(0, now: now) == nil)
        #expect(detection.recordFailure(0, now: now) == .ejected(node: 0, until: now + 10 * second, count: 1))
        #expect(detection.isEjected(0, now: now + 10 * second - 1))
        #expect(!detection.isEjected(0, now: now + 10 * second))
        #expect(detection.recordFailure(0, now: now + 5 * second) == nil, "failures while ejected do not count")

        now += 10 * second
        for _ in 0..<2 { #expect(detection.recordFailure(0, now: now) == nil) }
        #expect(detection.recordFailure(0, now: now) == .ejected(node: 0, until: now + 20 * second, count: 2))
        now += 20 * second
        for _ in 0..<2 { _ = detection.recordFailure(0, now: now) }
        #expect(detection.recordFailure(0, now: now) == .ejected(node: 0, until: now + 25 * second, count: 3), "capped at the maximum")
    }

    @Test func successesResetTheStreakAndReinstateEndsAnEjection() {
        var detection = OutlierDetection(nodeCount: 3, policy: .init(consecutiveFailures: 2, maxEjectedPercent: 100))
        #expect(detection.recordFailure(1, now: 0) == nil)
        detection.recordSuccess(1)
        #expect(detection.recordFailure(1, now: 0) == nil)
        #expect(detection.recordFailure(1, now: 0) != nil)
        #expect(detection.isEjected(1, now: 1))
        detection.reinstate(1)
        #expect(!detection.isEjected(1, now: 1))
    }

    @Test func atMostTheConfiguredShareOfNodesIsEjected() {
        var detection = OutlierDetection(nodeCount: 4, policy: .init(consecutiveFailures: 1, maxEjectedPercent: 50))
        #expect(detection.recordFailure(0, now: 0) == .ejected(node: 0, until: UInt64(30) * second, count: 1))
        #expect(detection.recordFailure(1, now: 0) == .ejected(node: 1, until: UInt64(30) * second, count: 1))
        #expect(detection.recordFailure(2, now: 0) == .ejectionCapped(node: 2))
        #expect(detection.ejectedCount(now: 0) == 2)
        // a single-node service is never ejected: there is nowhere else to go
        var single = OutlierDetection(nodeCount: 1, policy: .init(consecutiveFailures: 1))
        #expect(single.recordFailure(0, now: 0) == .ejectionCapped(node: 0))
        // with 10 % of 3 nodes one ejection is still allowed
        var small = OutlierDetection(nodeCount: 3, policy: .init(consecutiveFailures: 1, maxEjectedPercent: 10))
        #expect(small.recordFailure(0, now: 0) != .ejectionCapped(node: 0))
        #expect(small.recordFailure(1, now: 0) == .ejectionCapped(node: 1))
    }
}
