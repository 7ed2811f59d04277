import NIOCore
import Testing
@testable import FulcrumProxy
import RealSockets

/// Every way an exchange can end gives back what it took. After 20,000 mutated requests, a
/// node and its service showed 2 in flight with nothing in flight; with `max_in_flight: 2` the
/// service would have refused everything from then on.
@Suite(.realSockets) struct InFlightAccountingTests {
    static let seeds = [
        "GET /slow/20 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /download/300000 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/503 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /halt/100 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\npartial",
        "GET /status/200 HTTP/1.0\r\n\r\nGET /slow/5 HTTP/1.1\r\nHost: x\r\n\r\n",
    ]

    @Test func nothingStaysInFlightAfterMutatedRequestsAndAbruptClients() async throws {
        let fixture = try await ProxyFixture.start(backends: ["accounting"], workers: 2) { p in
            """
            services:
              s: { max_in_flight: 100000, nodes: [{ name: n, host: 127.0.0.1, port: \(p["accounting"]!) }] }
            routes: [{ name: all, match: { path_prefix: / }, service: s, max_in_flight: 100000 }]
            """
        }
        var random = SplitMix(seed: 0x1F_F117)
        let cases = (0..<1_200).map { index in
            let input = index % 4 == 0 ? Array(Self.seeds[index % Self.seeds.count].utf8) : HTTP1ReaderTests.mutation(of: Self.seeds, &random)
            return (input, TimeAmount.milliseconds(Int64(1 + random.next() % 80)), random.next() % 2 == 0)
        }
        for batch in stride(from: 0, to: cases.count, by: 24) {
            await withTaskGroup(of: Void.self) { group in
                for (input, timeout, reset) in cases[batch..<min(batch + 24, cases.count)] {
                    group.addTask { _ = try? await RawClient.exchange(port: fixture.port, input, timeout: timeout, reset: reset) }
                }
            }
        }
        var state = await fixture.server.state()
        for _ in 0..<50 where state.services[0].limitedInFlight != 0 || state.routes[0].limitedInFlight != 0 || state.services[0].nodes[0].inFlight != 0 {
            try await Task.sleep(for: .milliseconds(100))  // the last closes reach the proxy
            state = await fixture.server.state()
        }
        #expect(state.services[0].limitedInFlight == 0, "\(state.summary)")
        #expect(state.routes[0].limitedInFlight == 0, "\(state.summary)")
        #expect(state.services[0].nodes[0].inFlight == 0, "\(state.summary)")
        #expect(fixture.backends["accounting"]!.requests > 300, "enough requests reached the node")
        await fixture.stop()
    }
}
