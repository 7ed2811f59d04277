import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import RealSockets

/// Exchanges whose bodies stop moving midway: the stall timeouts end them and blame the side that
/// holds them up, and transfers that keep moving, however slowly, are left alone.
@Suite(.realSockets) struct StallIntegrationTests {
    static func fixture(_ name: String, timeouts: String) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: [name], workers: 1) { p in
            "timeouts: { \(timeouts) }\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p[name]!) }] } }\ndefault: { service: s }"
        }
    }

    /// Waits up to 5 s for the backend to have no connection open; returns whether it came to that.
    static func allClosed(_ backend: TestBackend) async throws -> Bool {
        for _ in 0..<500 where backend.connections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        return backend.connections == 0
    }

    @Test func aClientThatStopsSendingItsBodyGets408() async throws {
        let fixture = try await Self.fixture("stall-body", timeouts: "client_stall: 1s")
        let connection = try await RawConnection.connect(port: fixture.port)
        let started = ContinuousClock.now
        try await connection.send(Array("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789".utf8))
        let head = try await connection.receiveHead(within: .seconds(6))
        let elapsed = ContinuousClock.now - started
        #expect(head.hasPrefix("HTTP/1.1 408 "), "\(head)")
        #expect(elapsed >= .seconds(1), "cut after \(elapsed), before the stall timeout")
        #expect(try await connection.closed(within: .seconds(2)))
        // the node's connection, left with a tenth of a body, is closed as well
        #expect(try await Self.allClosed(fixture.backends["stall-body"]!))
        let node = await fixture.server.state().services[0].nodes[0]
        #expect(node.inFlight == 0)
        await fixture.stop()
    }

    /// A request answered by the proxy itself (404 here) while its body is still to come: the body
    /// is read and dropped while it moves, and the connection closes when it stops.
    @Test func theBodyOfARequestAnsweredLocallyMayNotStall() async throws {
        let fixture = try await ProxyFixture.start(backends: ["local-body"], workers: 1) { p in
            """
            timeouts: { client_stall: 1s }
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["local-body"]!) }] } }
            routes: [{ name: api, match: { path_prefix: /api/ }, service: s }]
            """
        }
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(Array("POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789".utf8))
        let head = try await connection.receiveHead()
        #expect(head.hasPrefix("HTTP/1.1 404 "), "\(head)")
        let started = ContinuousClock.now
        #expect(try await connection.closed(within: .seconds(5)))
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(900), "closed after \(elapsed), before the stall timeout")
        await fixture.stop()
    }

    /// A WebSocket through the proxy stays open while messages pass, however far apart within
    /// `tunnel_idle`, and closes when nothing passes for that long.
    @Test func aQuietTunnelIsClosedAfterTunnelIdle() async throws {
        let fixture = try await Self.fixture("quiet-ws", timeouts: "tunnel_idle: 1s")
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(Array(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        #expect(try await connection.receiveHead().hasPrefix("HTTP/1.1 101 "))
        // 2.5 s of messages 500 ms apart: longer than tunnel_idle, with no gap as long
        for index in 0..<5 {
            try await Task.sleep(for: .milliseconds(500))
            let mask: [UInt8] = [1, 2, 3, 4]
            let payload = Array("m\(index)".utf8).enumerated().map { $0.element ^ mask[$0.offset % 4] }
            try await connection.send([0x81, 0x80 | UInt8(payload.count)] + mask + payload)
            let frame = try await connection.receive(count: 2 + "echo: m\(index)".utf8.count)
            #expect(String(decoding: frame.dropFirst(2), as: UTF8.self) == "echo: m\(index)")
        }
        let quietSince = ContinuousClock.now
        #expect(try await connection.closed(within: .seconds(5)))
        let elapsed = ContinuousClock.now - quietSince
        #expect(elapsed >= .milliseconds(900), "closed after \(elapsed) of quiet, before tunnel_idle")
        #expect(try await Self.allClosed(fixture.backends["quiet-ws"]!))
        await fixture.stop()
    }

    @Test func aBodyThatKeepsMovingSlowlyIsNotCut() async throws {
        let fixture = try await Self.fixture("slow-body", timeouts: "client_stall: 1s")
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(Array("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n".utf8))
        // 2.5 s in all, longer than the stall timeout, with no gap as long as it
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(500))
            try await connection.send(Array("0123456789".utf8))
        }
        let head = try await connection.receiveHead(within: .seconds(3))
        #expect(head.hasPrefix("HTTP/1.1 200 "), "\(head)")
        let body = try await connection.receive(count: "slow-body received 50\n".utf8.count)
        #expect(String(decoding: body, as: UTF8.self) == "slow-body received 50\n")
        await connection.close()
        await fixture.stop()
    }

    @Test func aNodeThatStopsSendingItsBodyIsCutOff() async throws {
        let fixture = try await Self.fixture("stall-response", timeouts: "upstream_stall: 1s")
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(Array("GET /halt/100 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let head = try await connection.receiveHead()
        #expect(head.hasPrefix("HTTP/1.1 200 "), "\(head)")
        #expect(head.lowercased().contains("content-length: 200"), "\(head)")
        let started = ContinuousClock.now
        #expect(try await connection.receive(count: 100).count == 100)
        // the client gets what the node sent, then the connection closes: the only signal left
        #expect(try await connection.closed(within: .seconds(5)))
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(900), "cut after \(elapsed), before the stall timeout")
        #expect(try await Self.allClosed(fixture.backends["stall-response"]!))
        await fixture.stop()
    }

    @Test func aNodeThatStopsReadingTheBodyGets504() async throws {
        let fixture = try await Self.fixture("stall-request", timeouts: "upstream_stall: 1s")
        let connection = try await RawConnection.connect(port: fixture.port)
        let started = ContinuousClock.now
        try await connection.send(Array("POST /stall/3000 HTTP/1.1\r\nHost: x\r\nContent-Length: \(1 << 30)\r\n\r\n".utf8))
        // the node reads nothing after the head for 3 s: the body backs up until the proxy stops
        // reading it; when the node reads again, it finds the proxy closed the connection
        let writer = Task {
            let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 65_536)
            while !Task.isCancelled { try await connection.send(piece) }
        }
        let head = try await connection.receiveHead(within: .seconds(6))
        let elapsed = ContinuousClock.now - started
        #expect(head.hasPrefix("HTTP/1.1 504 "), "\(head)")
        #expect(elapsed >= .seconds(1), "cut after \(elapsed), before the stall timeout")
        #expect(try await connection.closed(within: .seconds(2)))
        writer.cancel()
        _ = await writer.result
        #expect(try await Self.allClosed(fixture.backends["stall-request"]!))
        await fixture.stop()
    }

    @Test func aClientThatStopsReadingIsDisconnected() async throws {
        let fixture = try await Self.fixture("stall-reader", timeouts: "client_stall: 1s")
        let backend = fixture.backends["stall-reader"]!
        let channel = try await StreamingIntegrationTests.nonReadingConnection(port: fixture.port)
        let started = ContinuousClock.now
        try await channel.writeAndFlush(ByteBuffer(string: "GET /download/\(1 << 30) HTTP/1.1\r\nHost: x\r\n\r\n"))
        for _ in 0..<100 where backend.connections == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(backend.connections == 1)
        // the node is held back while the client reads nothing, then let go with the client
        #expect(try await Self.allClosed(backend))
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1), "cut after \(elapsed), before the stall timeout")
        #expect(backend.downloadBytesSent < 64 << 20)
        let node = await fixture.server.state().services[0].nodes[0]
        #expect(node.inFlight == 0)
        try? await channel.close()
        await fixture.stop()
    }

    /// A response the proxy makes itself and then closes the connection after (the client asked
    /// for `Connection: close`): when the client reads none of it, the close does not wait for ever.
    @Test func aConnectionClosingAfterBytesTheClientNeverReadsIsClosedAnyway() async throws {
        let page = String(repeating: "x", count: 8 << 20)  // more than the sockets on the way hold
        let fixture = try await ProxyFixture.start(backends: ["closing"], workers: 1) { p in
            """
            timeouts: { client_stall: 1s }
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["closing"]!) }] } }
            routes: [{ name: api, match: { path_prefix: /api/ }, service: s }]
            errors: { 404: { body: "\(page)" } }
            """
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .connect(host: "127.0.0.1", port: fixture.port).get()
        let started = ContinuousClock.now
        try await channel.writeAndFlush(ByteBuffer(string: "GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(await fixture.server.openConnections() == 1, "the connection closed before its page was sent")
        for _ in 0..<500 where await fixture.server.openConnections() > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await fixture.server.openConnections() == 0)
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1), "closed after \(elapsed), before the stall timeout")
        try? await channel.close()
        await fixture.stop()
    }

    /// Before, a client sending its head a byte at a time, or not at all, held its connection
    /// until client_idle (and 2,600 of them kept every other client out at the connection cap).
    @Test func aHeadThatDoesNotArriveInTimeGets408() async throws {
        let fixture = try await ProxyFixture.start(backends: ["head-timeout"]) { p in
            """
            timeouts: { client_head: 1s, client_idle: 60s }
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["head-timeout"]!) }] } }
            default: { service: s }
            """
        }
        for partial in ["GET / HTTP/1.1\r\nHost: a\r\n", ""] {
            let started = ContinuousClock.now
            let result = try await RawClient.exchange(port: fixture.port, partial, timeout: .seconds(10))
            #expect(result.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && result.serverClosed, "\(result.text)")
            #expect(ContinuousClock.now - started < .seconds(5), "closed after client_head, not client_idle")
        }
        // a complete request is served, and its connection then waits for client_idle, not client_head
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/").status == .ok)
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(try await client.request(.GET, "/").status == .ok, "an idle keep-alive connection is not timed as a head")
        await client.close()
        await fixture.stop()
    }
}
