import Testing
@testable import FulcrumCore

@Suite struct BalancingTests {
    func counts(_ picks: [Int?], nodes: Int) -> [Int] {
        var result = Array(repeating: 0, count: nodes)
        for case let pick? in picks { result[pick] += 1 }
        return result
    }

    @Test func smoothRoundRobinIsExactAndInterleaved() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        let sequence = (0..<7).map { _ in rr.pick(isEligible: { _ in true })! }
        #expect(sequence == [0, 0, 1, 0, 2, 0, 0])  // nginx's documented order: a a b a c a a
        var weighted = SmoothWeightedRoundRobin(weights: [3, 1])
        let picks = (0..<10_000).map { _ in weighted.pick(isEligible: { _ in true }) }
        #expect(counts(picks, nodes: 2) == [7_500, 2_500])
    }

    @Test func roundRobinSkipsIneligibleAndZeroWeightNodes() {
        var rr = SmoothWeightedRoundRobin(weights: [1, 0, 1, 1])
        let picks = (0..<300).map { _ in rr.pick(isEligible: { $0 != 2 }) }
        #expect(counts(picks, nodes: 4) == [150, 0, 0, 150])
        #expect(rr.pick(isEligible: { _ in false }) == nil)
    }

    @Test func weightedRandomFollowsWeightsWithinTwoPercent() {
        var random = FastRandom(seed: 42)
        let sampler = WeightedRandom(weights: [3, 1])
        let picks = (0..<10_000).map { _ in sampler.pick(using: &random, isEligible: { _ in true }) }
        let share = Double(counts(picks, nodes: 2)[0]) / 10_000
        #expect(abs(share - 0.75) < 0.02, "share of the weight-3 node was \(share)")
        let excluded = (0..<1_000).map { _ in sampler.pick(using: &random, isEligible: { $0 == 1 }) }
        #expect(counts(excluded, nodes: 2) == [0, 1_000])
    }

    @Test func powerOfTwoChoicesPrefersTheLessLoadedNode() {
        var random = FastRandom(seed: 7)
        let p2c = PowerOfTwoChoices(weights: [1, 1, 1])
        let inFlight = [10, 0, 10]
        let picks = (0..<3_000).map { _ in p2c.pick(inFlight: inFlight, using: &random, isEligible: { _ in true }) }
        let share = Double(counts(picks, nodes: 3)[1]) / 3_000
        // node 1 wins every draw it is part of: P = 1 - (2/3 * 1/2) = 2/3
        #expect(abs(share - 2.0 / 3.0) < 0.03, "idle node share \(share)")
        // with equal load the choice is spread evenly
        let even = (0..<9_000).map { _ in p2c.pick(inFlight: [0, 0, 0], using: &random, isEligible: { _ in true }) }
        for count in counts(even, nodes: 3) { #expect(abs(count - 3_000) < 300) }
    }

    @Test func consistentHashMovesAboutOneNthOfKeysWhenANodeIsAdded() {
        let names = (0..<4).map { "node-\($0)" }
        let before = ConsistentHashRing(names: names, weights: [1, 1, 1, 1])
        let after = ConsistentHashRing(names: names + ["node-4"], weights: [1, 1, 1, 1, 1])
        var moved = 0
        var movedElsewhere = 0
        var spread = Array(repeating: 0, count: 5)
        for key in 0..<10_000 {
            let hash = StableHash.hash("user-\(key)".utf8)
            let a = before.node(for: hash, isEligible: { _ in true })!
            let b = after.node(for: hash, isEligible: { _ in true })!
            spread[b] += 1
            if a != b { moved += 1; if b != 4 { movedElsewhere += 1 } }
        }
        let share = Double(moved) / 10_000
        #expect(share > 0.14 && share < 0.26, "moved \(share), ideal 0.2")
        #expect(movedElsewhere == 0, "keys only move to the new node")
        for count in spread { #expect(count > 1_400 && count < 2_600, "spread \(spread)") }
    }

    @Test func consistentHashFollowsWeightsAndSkipsIneligibleNodes() {
        let ring = ConsistentHashRing(names: ["a", "b"], weights: [3, 1])
        var hits = [0, 0]
        for key in 0..<10_000 { hits[ring.node(for: StableHash.hash("k\(key)".utf8), isEligible: { _ in true })!] += 1 }
        let share = Double(hits[0]) / 10_000
        #expect(abs(share - 0.75) < 0.05, "share \(share)")
        #expect(ring.node(for: 12345, isEligible: { $0 == 1 }) == 1)
        #expect(ring.node(for: 12345, isEligible: { _ in false }) == nil)
    }

    @Test func stableHashIsFixed() {
        // FNV-1a + fmix64 of "" and "a": fixed forever so that rings agree across versions and instances.
        #expect(StableHash.hash("".utf8) == StableHash.mix(0xcbf2_9ce4_8422_2325))
        #expect(StableHash.hash("a".utf8) == StableHash.mix(0xaf63_dc4c_8601_ec8c))
    }

    @Test func serviceBalancerUsesTheConfiguredStrategy() {
        var random = FastRandom(seed: 1)
        let nodes = [Node(name: "a", host: "h", port: 1), Node(name: "b", host: "h", port: 2), Node(name: "c", host: "h", port: 3)]

        var pinned = ServiceBalancer(service: Service(name: "s", strategy: .pinned(node: "c"), nodes: nodes))
        #expect((0..<5).map { _ in pinned.pick(for: TestRequest("GET", "/"), random: &random, isEligible: { _ in true }) } == [2, 2, 2, 2, 2])
        #expect(pinned.pick(for: TestRequest("GET", "/"), random: &random, isEligible: { $0 != 2 }) == nil)

        var hashed = ServiceBalancer(service: Service(name: "s", strategy: .hash(.header("X-User")), nodes: nodes))
        let user = TestRequest("GET", "/", headers: [("X-User", "alice")])
        let first = hashed.pick(for: user, random: &random, isEligible: { _ in true })
        for _ in 0..<20 { #expect(hashed.pick(for: user, random: &random, isEligible: { _ in true }) == first) }

        var byIP = ServiceBalancer(service: Service(name: "s", strategy: .hash(.clientIP), nodes: nodes))
        let ips = Set((0..<200).compactMap { byIP.pick(for: TestRequest("GET", "/", clientIP: "10.0.0.\($0)"), random: &random, isEligible: { _ in true }) })
        #expect(ips == [0, 1, 2])

        var least = ServiceBalancer(service: Service(name: "s", strategy: .leastConnections, nodes: nodes))
        least.started(0); least.started(0); least.started(2); least.started(2)
        let picks = (0..<300).compactMap { _ in least.pick(for: TestRequest("GET", "/"), random: &random, isEligible: { _ in true }) }
        #expect(picks.filter { $0 == 1 }.count > 150)
        least.finished(0)
        #expect(least.inFlight == [1, 0, 2])
    }
}

@Suite struct DrainTests {
    @Test func aDrainingNodeGetsNoBalancedRequestsButKeepsItsWeight() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services:
              web:
                nodes:
                  - { name: a, host: 127.0.0.1, port: 9001, weight: 2 }
                  - { name: b, host: 127.0.0.1, port: 9002, weight: 2, drain: true }
            """)
        let service = try #require(config.service(named: "web"))
        #expect(service.nodes[1].weight == 2 && service.nodes[1].effectiveWeight == 0)
        var balancer = ServiceBalancer(service: service)
        var random = FastRandom(seed: 1)
        let request = try DescribedRequest(target: "/")
        let picks = (0..<100).compactMap { _ in balancer.pick(for: request, random: &random, isEligible: { _ in true }) }
        #expect(picks.count == 100 && picks.allSatisfy { $0 == 0 })
    }
}
