import FulcrumCore
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import FulcrumProxy
import RealSockets

/// What a closed connection leaves behind: nothing. Under mixed load every closed connection
/// kept its handler, its channel and their buffers alive (about 1.65 KiB each), and memory grew
/// without bound.
@Suite(.realSockets) struct ConnectionLifetimeTests {
    @Test func aClosedClientConnectionFreesItsHandler() throws {
        weak var handler: ProxyHandler?
        weak var channel: EmbeddedChannel?
        let loop: LoopContext
        do {
            let connection = try HandlerTests.proxyConnection()
            loop = connection.loop
            channel = connection.channel
            handler = try connection.channel.pipeline.syncOperations.handler(type: ProxyHandler.self)
            try connection.channel.writeInbound(ByteBuffer(string: "GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
            connection.channel.embeddedEventLoop.run()
            #expect(!connection.channel.isActive)
        }
        #expect(loop.openConnectionCount == 0)
        #expect(handler == nil, "the handler outlived its closed connection")
        #expect(channel == nil, "the channel outlived its closed connection")
    }
}

#if canImport(Glibc)
import CHeapInUse

/// The same through real sockets: connections that each make one request and close, get a local
/// 404, or send nothing, must leave the process's heap as they found it. Before the fix, 50,000
/// such connections kept 33-80 MiB.
@Suite(.realSockets) struct ConnectionMemoryTests {
    static func heapInUse() -> Int { Int(c_heap_in_use()) }

    @Test func closedConnectionsLeaveTheHeapAsTheyFoundIt() async throws {
        let fixture = try await ProxyFixture.start(backends: ["memory"], workers: 1) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["memory"]!) }] } }
            routes: [{ name: r, match: { path_prefix: /proxied }, service: s }]
            """
        }
        func connections(_ count: Int) async throws {
            for index in 0..<count {
                switch index % 3 {
                case 0: _ = try await RawClient.exchange(port: fixture.port, "GET /proxied HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout: .milliseconds(300))
                case 1: _ = try await RawClient.exchange(port: fixture.port, "GET /nowhere HTTP/1.0\r\n\r\n", timeout: .milliseconds(300))
                default: _ = try await RawClient.exchange(port: fixture.port, "", timeout: .milliseconds(1))
                }
            }
        }
        try await connections(300)  // pools, buffers and caches reach their working size
        let before = Self.heapInUse()
        try await connections(3_000)
        // each test client keeps its channel until its timeout task has run
        try await Task.sleep(for: .milliseconds(600))
        let grown = Self.heapInUse() - before
        #expect(grown < 300_000, "3,000 closed connections left \(grown) bytes behind")
        await fixture.stop()
    }
}
#endif
