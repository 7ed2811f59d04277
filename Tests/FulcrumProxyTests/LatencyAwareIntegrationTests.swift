import FulcrumCore
import FulcrumProxy
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// The latency-aware strategy and slow start on real traffic.
@Suite(.realSockets) struct LatencyAwareIntegrationTests {
    /// Sends `count` requests over `connections` keep-alive connections and counts the answering backends.
    static func spread(_ fixture: ProxyFixture, _ path: String, count: Int, connections: Int = 4) async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: [String: Int].self) { group in
            for _ in 0..<connections {
                group.addTask {
                    let client = try await fixture.client()
                    var seen: [String: Int] = [:]
                    for _ in 0..<count / connections {
                        let response = try await client.request(.GET, path)
                        seen[String(response.body.split(separator: "\n").first ?? ""), default: 0] += 1
                    }
                    await client.close()
                    return seen
                }
            }
            return try await group.reduce(into: [:]) { total, part in total.merge(part, uniquingKeysWith: +) }
        }
    }

    @Test func aSlowNodeGetsLittleTraffic() async throws {
        let fixture = try await ProxyFixture.start(backends: ["lat-f1", "lat-f2", "lat-slow"], workers: 1) { p in
            """
            services:
              s:
                strategy: latency
                nodes:
                  - { name: f1, host: 127.0.0.1, port: \(p["lat-f1"]!) }
                  - { name: f2, host: 127.0.0.1, port: \(p["lat-f2"]!) }
                  - { name: slow, host: 127.0.0.1, port: \(p["lat-slow"]!) }
            default: { service: s }
            """
        }
        let seen = try await Self.spread(fixture, "/slowon/lat-slow/30", count: 300)
        #expect(seen.values.reduce(0, +) == 300)
        // round robin would send it 100; it gets a few while its first answers are measured
        #expect(seen["lat-slow", default: 0] < 30, "\(seen)")
        await fixture.stop()
    }

    @Test func aNodeAnsweringFastErrorsDoesNotAttractTraffic() async throws {
        let fixture = try await ProxyFixture.start(backends: ["lat-ok1", "lat-ok2", "lat-bad"], workers: 1) { p in
            """
            services:
              s:
                strategy: latency
                nodes:
                  - { name: ok1, host: 127.0.0.1, port: \(p["lat-ok1"]!) }
                  - { name: ok2, host: 127.0.0.1, port: \(p["lat-ok2"]!) }
                  - { name: bad, host: 127.0.0.1, port: \(p["lat-bad"]!) }
            default: { service: s }
            """
        }
        let seen = try await Self.spread(fixture, "/failon/lat-bad", count: 300)
        #expect(seen["lat-bad", default: 0] < 30, "\(seen)")
        await fixture.stop()
    }

    @Test func anAddedNodeRampsUpUnderSlowStart() async throws {
        let fixture = try await ProxyFixture.start(backends: ["ramp-a", "ramp-b"], workers: 1) { p in
            "services: { s: { slow_start: 2s, nodes: [{ name: a, host: 127.0.0.1, port: \(p["ramp-a"]!), weight: 10 }] } }\ndefault: { service: s }\n"
        }
        let a = fixture.backends["ramp-a"]!.port
        let b = fixture.backends["ramp-b"]!.port
        try fixture.reload(
            "services: { s: { slow_start: 2s, nodes: [{ name: a, host: 127.0.0.1, port: \(a), weight: 10 }, { name: b, host: 127.0.0.1, port: \(b), weight: 10 }] } }\ndefault: { service: s }\n",
            generation: 2)
        try await Task.sleep(for: .milliseconds(30))
        let early = try await Self.spread(fixture, "/", count: 100, connections: 1)
        #expect(early["ramp-b", default: 0] < 25, "at first b gets about a tenth of its share: \(early)")
        try await Task.sleep(for: .milliseconds(3200))
        let later = try await Self.spread(fixture, "/", count: 100, connections: 1)
        #expect((40...60).contains(later["ramp-b", default: 0]), "after the ramp b gets its full share: \(later)")
        await fixture.stop()
    }
}
