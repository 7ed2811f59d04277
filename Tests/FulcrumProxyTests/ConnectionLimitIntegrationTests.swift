import NIOConcurrencyHelpers
import Testing
import RealSockets

/// `max_connections`: at the cap the listener stops accepting, and a connection waiting in the
/// backlog is served once another closes or a reload raises the cap; connections still sending
/// their first head are shed at the cap. `max_connections_per_client`: one address's share.
@Suite(.realSockets) struct ConnectionLimitIntegrationTests {
    /// Waits up to `limit` for `task` to finish; returns its result, or nil if it is still running.
    static func result<T: Sendable>(of task: Task<T, Error>, within limit: Duration) async throws -> T? {
        let done = NIOLockedValueBox<T?>(nil)
        let watcher = Task {
            let value = try await task.value
            done.withLockedValue { $0 = value }
        }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let value = done.withLockedValue({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        watcher.cancel()
        return done.withLockedValue { $0 }
    }

    @Test func connectionsBeyondTheCapWaitUntilOneCloses() async throws {
        func config(_ cap: Int) -> ([String: Int]) -> String {
            { p in "max_connections: \(cap)\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["capped"]!) }] } }\ndefault: { service: s }" }
        }
        let fixture = try await ProxyFixture.start(backends: ["capped"], workers: 2, config(2))
        let first = try await fixture.client()
        let second = try await fixture.client()
        #expect(try await first.request(.GET, "/").status == .ok)
        #expect(try await second.request(.GET, "/").status == .ok)

        // the kernel completes the third handshake, but the proxy does not take the connection
        let third = try await fixture.client()
        let waiting = Task { try await third.request(.GET, "/").status }
        #expect(try await Self.result(of: waiting, within: .milliseconds(500)) == nil, "served beyond the cap")
        #expect(await fixture.server.openConnections() == 2)
        await first.close()
        #expect(try await Self.result(of: waiting, within: .seconds(3)) == .ok, "not served after a connection closed")

        // a reload that raises the cap lets a waiting connection in at once
        let fourth = try await fixture.client()
        let alsoWaiting = Task { try await fourth.request(.GET, "/").status }
        #expect(try await Self.result(of: alsoWaiting, within: .milliseconds(500)) == nil, "served beyond the cap")
        try fixture.reload(config(3)(fixture.backends.mapValues(\.port)), generation: 2)
        #expect(try await Self.result(of: alsoWaiting, within: .seconds(3)) == .ok, "not served after the cap was raised")
        for client in [second, third, fourth] { await client.close() }
        await fixture.stop()
    }

    /// Before, 2,600 connections sending their heads a byte at a time against `max_connections:
    /// 2000` kept every other client waiting in the backlog until their head timeout.
    @Test func slowFirstHeadsAreClosedAtTheCapSoWaitingClientsGetIn() async throws {
        let fixture = try await ProxyFixture.start(backends: ["shed"], workers: 2) { p in
            """
            max_connections: 8
            timeouts: { client_head: 30s }
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["shed"]!) }] } }
            default: { service: s }
            """
        }
        // one client that was served keeps its place; seven others never finish a head
        let served = try await fixture.client()
        #expect(try await served.request(.GET, "/").status == .ok)
        var slow: [RawConnection] = []
        for _ in 0..<7 {
            let connection = try await RawConnection.connect(port: fixture.port)
            try await connection.send(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".utf8))
            slow.append(connection)
        }
        let waiting = try await fixture.client()
        let started = ContinuousClock.now
        #expect(try await waiting.request(.GET, "/").status == .ok)
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(10), "waited \(waited): the slow heads were kept until client_head")
        // shed as places are needed: on one loop, or on both, before the listener resumed
        var shed = 0
        for connection in slow {
            let head = try await connection.receiveHead(within: .milliseconds(500))
            if head.isEmpty { continue }
            #expect(head.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(head)")
            #expect(try await connection.closed(within: .seconds(2)))
            shed += 1
        }
        #expect(shed >= 1)
        #expect(try await served.request(.GET, "/").status == .ok, "a served connection was shed")
        for client in [served, waiting] { await client.close() }
        await fixture.stop()
    }

    @Test func aClientAddressHoldsAtMostItsShareOfConnections() async throws {
        let fixture = try await ProxyFixture.start(backends: ["share"], workers: 2) { p in
            """
            max_connections_per_client: 2
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["share"]!) }] } }
            default: { service: s }
            """
        }
        let request = Array("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)  // no body: heads follow each other
        /// Connects from `source` and sends a request; returns the connection if it was answered 200.
        func served(from source: String) async throws -> RawConnection? {
            let connection = try await RawConnection.connect(port: fixture.port, from: source)
            try await connection.send(request)
            if try await connection.receiveHead().hasPrefix("HTTP/1.1 200") { return connection }
            await connection.close()
            return nil
        }
        let first = try #require(try await served(from: "127.0.0.2"))
        let second = try #require(try await served(from: "127.0.0.2"))
        let third = try await RawConnection.connect(port: fixture.port, from: "127.0.0.2")
        #expect(try await third.closed(within: .seconds(2)), "a third connection from one address was kept")
        #expect(try await third.receive(count: 1).isEmpty, "the refused connection was answered")
        let other = try #require(try await served(from: "127.0.0.3"), "another address was refused")
        // the two held connections are still served, and a closed one frees a place
        try await second.send(request)
        #expect(try await second.receiveHead().hasPrefix("HTTP/1.1 200"))
        await first.close()
        var again: RawConnection?
        for _ in 0..<50 where again == nil {
            again = try await served(from: "127.0.0.2")
            if again == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(again != nil, "a place freed by a close was not given back")
        for connection in [second, third, other] { await connection.close() }
        await again?.close()
        await fixture.stop()
    }
}
