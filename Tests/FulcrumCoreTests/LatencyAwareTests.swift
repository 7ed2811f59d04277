import Testing
@testable import FulcrumCore

@Suite struct LatencyAwareTests {
    static let millisecond: Int64 = 1_000_000
    static let second: UInt64 = 1_000_000_000

    @Test func aSlowerResponseRaisesTheEstimateAtOnceAndFasterOnesLowerItGradually() {
        var ewma = PeakEWMA(weights: [1], settings: .init(decay: .seconds(10)))
        #expect(ewma.estimate(0, now: 5 * Self.second) == PeakEWMA.initialEstimateNanoseconds)
        ewma.record(0, latencyNanoseconds: 2 * Self.millisecond, failed: false, now: 10 * Self.second)
        #expect(ewma.estimate(0, now: 10 * Self.second) == 2e6, "the first response replaces the initial guess")
        ewma.record(0, latencyNanoseconds: 50 * Self.millisecond, failed: false, now: 11 * Self.second)
        #expect(ewma.estimate(0, now: 11 * Self.second) == 50e6, "a peak is taken at once")
        ewma.record(0, latencyNanoseconds: 2 * Self.millisecond, failed: false, now: 12 * Self.second)
        let afterOneFast = ewma.estimate(0, now: 12 * Self.second)
        #expect(afterOneFast < 50e6 && afterOneFast > 40e6, "one fast response after 1 s moves it a little: \(afterOneFast)")
        #expect(abs(ewma.estimate(0, now: 22 * Self.second) - afterOneFast / 2) < 1, "after τ idle, half of it is left")
    }

    @Test func failuresCountAtLeastAsThePenalty() {
        var ewma = PeakEWMA(weights: [1, 1], settings: .init(failurePenalty: .milliseconds(800)))
        ewma.record(0, latencyNanoseconds: 1 * Self.millisecond, failed: true, now: Self.second)
        ewma.record(1, latencyNanoseconds: 5 * Self.millisecond, failed: false, now: Self.second)
        #expect(ewma.estimate(0, now: Self.second) == 800e6)
        var random = FastRandom(seed: 9)
        let picks = (0..<1000).compactMap { _ in ewma.pick(inFlight: [0, 0], now: Self.second, using: &random, isEligible: { _ in true }) }
        #expect(picks.filter { $0 == 1 }.count == 1000, "the node answering fast errors gets nothing when paired")
    }

    @Test func aSlowNodeGetsLittleTrafficAndInFlightRequestsCount() {
        var ewma = PeakEWMA(weights: [1, 1, 1, 1])
        for node in 0..<4 {
            ewma.record(node, latencyNanoseconds: (node == 3 ? 10 : 1) * Self.millisecond, failed: false, now: Self.second)
        }
        var random = FastRandom(seed: 1)
        var counts = [0, 0, 0, 0]
        for _ in 0..<10_000 { counts[ewma.pick(inFlight: [0, 0, 0, 0], now: Self.second, using: &random, isEligible: { _ in true })!] += 1 }
        // the slow node only wins when drawn twice... which P2C never does: it never wins
        #expect(counts[3] == 0, "\(counts)")
        #expect(counts[0...2].allSatisfy { abs($0 - 3333) < 300 }, "\(counts)")
        // with 20 requests in flight on node 0 (cost 21 ms), node 3 (10 ms, idle) is preferred to it
        var againstBusy = 0
        for _ in 0..<10_000 {
            let choice = ewma.pick(inFlight: [20, 0, 0, 0], now: Self.second, using: &random, isEligible: { $0 == 0 || $0 == 3 })
            if choice == 3 { againstBusy += 1 }
        }
        #expect(againstBusy == 10_000)
    }

    @Test func slowStartRampsFromATenthToTheFullWeight() {
        var ramp = SlowStart(nodeCount: 3, duration: .seconds(10))
        #expect(!ramp.isRamping)
        ramp.begin(1, now: 100 * Self.second)
        #expect(ramp.weights(base: [10, 10, 0], now: 100 * Self.second) == [10, 1, 0])
        #expect(ramp.weights(base: [10, 10, 0], now: 105 * Self.second) == [10, 6, 0])
        #expect(ramp.weights(base: [10, 100, 0], now: 109 * Self.second) == [10, 91, 0])
        #expect(ramp.isRamping)
        #expect(ramp.weights(base: [10, 10, 0], now: 110 * Self.second) == [10, 10, 0])
        #expect(!ramp.isRamping, "a finished ramp ends")
    }

    @Test func theLatencyStrategyAndSlowStartAreConfigured() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services:
              api:
                strategy: latency
                latency: { decay: 5s, failure_penalty: 250ms }
                slow_start: 30s
                nodes: [{ name: a, host: 127.0.0.1, port: 9001 }]
            """)
        #expect(config.services[0].strategy == .latency(.init(decay: .seconds(5), failurePenalty: .milliseconds(250))))
        #expect(config.services[0].slowStart == .seconds(30))
        #expect(throws: ConfigError.self) {
            try FulcrumConfig.parse("listen: [{ port: 80 }]\nservices: { s: { latency: { decay: 1s }, nodes: [{ name: a, host: 127.0.0.1, port: 1 }] } }")
        }
    }

    @Test func reweightingKeepsLatencyEstimates() throws {
        var balancer = ServiceBalancer(service: Service(
            name: "s", strategy: .latency(.init()), nodes: [Node(name: "a", host: "h", port: 1), Node(name: "b", host: "h", port: 2)]))
        balancer.recordLatency(0, nanoseconds: 50 * Self.millisecond, failed: false, now: Self.second)
        balancer.recordLatency(1, nanoseconds: 1 * Self.millisecond, failed: false, now: Self.second)
        balancer.reweight([1, 1])
        var random = FastRandom(seed: 4)
        let request = try DescribedRequest(target: "/")
        let picks = (0..<100).compactMap { _ in balancer.pick(for: request, random: &random, now: Self.second, isEligible: { _ in true }) }
        #expect(picks.allSatisfy { $0 == 1 })
    }
}
