import FulcrumCore
import Logging
import NIOCore
import Testing
@testable import FulcrumProxy

/// Health belongs to a node's identity (service, name, address) and survives every change that
/// keeps the node. Before, adding a node to a service, or editing its health policies, made a
/// node that probes had marked down count as up again (10,135 POSTs got 502 in 8 s).
@Suite struct HealthBoardTests {
    static func runtime(_ nodes: String, check: String = "interval: 1s", passive: String = "consecutive_failures: 1", generation: Int) throws -> RuntimeConfig {
        try RuntimeConfig(config: FulcrumConfig.parse("""
            listen: [{ port: 0 }]
            services:
              s:
                health_check: { type: tcp, \(check) }
                passive_health: { \(passive), max_ejected_percent: 100 }
                nodes: [\(nodes)]
            """), generation: generation)
    }

    /// Up and ejected, by node name, for a service whose nodes are a, b and c.
    static func health(_ board: HealthBoard) -> [String: (up: Bool, ejected: Bool)] {
        let nodes = board.nodeHealth(now: NIODeadline.now().uptimeNanoseconds).nodes[0]
        var result: [String: (up: Bool, ejected: Bool)] = [:]
        for (name, node) in zip(["a", "b", "c"], nodes) { result[name] = (node.up, node.ejectedFor != nil) }
        return result
    }

    @Test func aDownOrEjectedNodeStaysSoWhenItsServiceChanges() throws {
        let a = "{ name: a, host: 127.0.0.1, port: 9001 }"
        let b = "{ name: b, host: 127.0.0.1, port: 9002 }"
        let c = "{ name: c, host: 127.0.0.1, port: 9003 }"
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let board = HealthBoard(runtime: try Self.runtime("\(a), \(b), \(c)", generation: 1), logger: logger) { _ in }
        for _ in 0..<3 { board.recordProbe(service: "s", node: "b", success: false, detail: "refused") }
        board.reportFailureStreak(generation: 1, service: 0, node: 2, now: NIODeadline.now().uptimeNanoseconds)
        var health = Self.health(board)
        #expect(health["b"]?.up == false && health["c"]?.ejected == true)

        // a node added (first in the list, so every index moves), the probe and passive policies edited
        board.apply(try Self.runtime(
            "{ name: d, host: 127.0.0.1, port: 9004 }, \(a), \(b), \(c)", check: "interval: 2s, unhealthy_threshold: 5",
            passive: "consecutive_failures: 4", generation: 2))
        let (generation, nodes) = board.nodeHealth(now: NIODeadline.now().uptimeNanoseconds)
        #expect(generation == 2)
        #expect(nodes[0].map(\.up) == [true, true, false, true], "d and a up, b still down, c up")
        #expect(nodes[0].map { $0.ejectedFor != nil } == [false, false, false, true], "c still ejected")
        #expect(board.snapshot(for: 2)?.isUnusable(service: 0, node: 2, now: 0) == true, "what the loops install with the configuration")

        // the same name at another address is another node: it starts up and clean
        board.apply(try Self.runtime("\(a), { name: b, host: 127.0.0.1, port: 9102 }, \(c)", generation: 3))
        health = Self.health(board)
        #expect(health["b"]?.up == true && health["c"]?.ejected == true)
    }
}
