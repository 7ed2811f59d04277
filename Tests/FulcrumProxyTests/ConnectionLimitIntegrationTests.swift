import NIOConcurrencyHelpers
import Testing

/// `max_connections`: at the cap the listener stops accepting, and a connection waiting in the
/// backlog is served once another closes or a reload raises the cap.
@Suite struct ConnectionLimitIntegrationTests {
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
}
