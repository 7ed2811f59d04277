import FulcrumCore
import FulcrumTLS
import NIOCore
import NIOPosix

/// Keep-alive connections to one node, owned by one event loop, so a client connection and its
/// upstream connection always share a thread. Idle connections are reused last-in first-out
/// (the warmest first) and closed by the loop's sweeper once idle longer than `upstream_idle`.
final class NodePool {
    /// A node's address and how TLS is spoken to it: what pooled connections must share to be
    /// reused for one another.
    struct Key: Hashable {
        var address: SocketAddress
        /// `nil` for a plaintext node.
        var tls: NodeTLS?
        /// The node's host, which is the name checked in its certificate unless `tls` names one.
        var host: String

        init(address: SocketAddress, tls: NodeTLS?, host: String) {
            self.address = address
            self.tls = tls
            self.host = tls == nil || tls?.serverName != nil ? "" : host
        }
    }

    let key: Key
    var address: SocketAddress { key.address }
    /// TLS for new connections, from the configuration in force (a reload brings a new context,
    /// with the CA file read again; connections already open keep theirs).
    var tls: UpstreamTLS?
    private let eventLoop: EventLoop
    private var idle: [UpstreamHandler] = []
    /// Set when the node left the configuration: connections are closed instead of pooled.
    private var isRetired = false

    init(key: Key, tls: UpstreamTLS?, eventLoop: EventLoop) {
        self.key = key
        self.tls = tls
        self.eventLoop = eventLoop
    }

    /// An idle connection, if one is open.
    func takeIdle() -> UpstreamHandler? {
        while let connection = idle.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Opens a new connection to the node (on this pool's event loop); for a TLS node, the
    /// connection is ready once its handshake completed, within `timeout` as well.
    func connect(timeout: TimeAmount) -> EventLoopFuture<UpstreamHandler> {
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        let tls = self.tls
        let handshake = NIOLoopBoundBox<EventLoopFuture<Void>?>(nil, eventLoop: eventLoop)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { handshake.value = try tls.addHandshake(to: channel, timeout: timeout) }
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pool: pool.value))
                }
            }
            .connect(to: address)
            .assumeIsolated()
            .flatMap { channel in
                guard let done = handshake.value else { return channel.eventLoop.makeSucceededFuture(channel) }
                return done.map { channel }
            }
            .flatMapThrowing { channel in try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) }
            .nonisolated()
    }

    /// Returns a connection whose exchange finished and that the node keeps open; `now` starts
    /// its idle time. A connection that is not ``UpstreamHandler/isReusable`` is closed instead:
    /// the pool trusts no caller's judgement that an exchange ended cleanly. Its reads resume if
    /// the exchange paused them (a slow client, with the response's end in the same read): an idle
    /// connection reads, so that the node closing it is noticed and the next exchange gets its
    /// response.
    func release(_ connection: UpstreamHandler, now: NIODeadline = .now()) {
        guard connection.isActive else { return }
        if isRetired || !connection.isReusable {
            connection.close()
            return
        }
        connection.resumeReading()
        connection.idleSince = now
        idle.append(connection)
    }

    func remove(_ connection: UpstreamHandler) {
        if let index = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: index) }
    }

    /// Closes idle connections unused since `deadline`.
    func closeIdle(olderThan deadline: NIODeadline) {
        guard idle.contains(where: { $0.idleSince < deadline }) else { return }
        let expired = idle.filter { $0.idleSince < deadline }
        idle.removeAll { $0.idleSince < deadline }
        for connection in expired { connection.close() }
    }

    /// Retires the pool: idle connections close now, busy ones when they are released.
    func retire() {
        isRetired = true
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
    }
}
