import FulcrumCore
import NIOCore

/// Everything one event loop needs to serve requests without locks: the configuration it is
/// currently using, its balancers, its random generator and its upstream connection pools.
/// Created for and only touched on its own event loop.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var runtime: RuntimeConfig
    /// Who gets a request and what it costs: splits, limits, breakers, balancers, health.
    let policy: LoopPolicy
    /// Pools per service and node of `runtime`.
    private(set) var pools: [[NodePool]]
    let logs: ProxyLogs
    /// Set when draining: connections close after their current exchange.
    var isDraining = false
    /// Upstream-response timeouts of this loop's exchanges.
    let responseTimer: ResponseTimer
    /// Connections with writes to flush when the loop has handled its current batch of events.
    let endOfTickFlushes: EndOfTickFlushes
    /// Traffic counts by route, service and node.
    var statistics: LoopStatistics
    /// The server's connection cap, watched to shed connections still sending their first head
    /// while it holds the listeners; `nil` in handler tests without a server.
    private let connectionLimit: ConnectionLimit?

    init(
        eventLoop: EventLoop, runtime: RuntimeConfig, logs: ProxyLogs, healthBoard: HealthBoard? = nil, banBoard: BanBoard? = nil,
        connectionLimit: ConnectionLimit? = nil
    ) {
        self.eventLoop = eventLoop
        self.responseTimer = ResponseTimer(eventLoop: eventLoop)
        self.endOfTickFlushes = EndOfTickFlushes(eventLoop: eventLoop)
        self.runtime = runtime
        self.logs = logs
        self.connectionLimit = connectionLimit
        self.policy = LoopPolicy(runtime: runtime, logger: logs.events, healthBoard: healthBoard, banBoard: banBoard)
        self.statistics = LoopStatistics(config: runtime.config)
        self.pools = Self.makePools(for: runtime, reusing: [:], eventLoop: eventLoop)
        self.scheduleIdleSweep()
    }

    /// Switches to a new configuration. Pools of nodes that still exist (same address and TLS
    /// settings) are kept, with their idle connections, and open new connections with the new
    /// configuration's TLS context; pools of removed nodes close their idle connections.
    func install(_ runtime: RuntimeConfig) {
        var existing: [NodePool.Key: NodePool] = [:]
        for pool in pools.joined() { existing[pool.key] = pool }
        let newPools = Self.makePools(for: runtime, reusing: existing, eventLoop: eventLoop)
        let kept = Set(newPools.joined().map { ObjectIdentifier($0) })
        for pool in existing.values where !kept.contains(ObjectIdentifier(pool)) { pool.retire() }
        self.pools = newPools
        policy.install(runtime, now: NIODeadline.now().uptimeNanoseconds)
        statistics.install(runtime.config)
        self.runtime = runtime
    }

    private static func makePools(for runtime: RuntimeConfig, reusing existing: [NodePool.Key: NodePool], eventLoop: EventLoop) -> [[NodePool]] {
        var created = existing
        return runtime.nodeAddresses.indices.map { service in
            runtime.nodeAddresses[service].indices.map { node in
                let key = runtime.poolKey(service: service, node: node)
                let tls = runtime.nodeTLS[service][node]
                if let pool = created[key] {
                    pool.tls = tls
                    return pool
                }
                let pool = NodePool(key: key, tls: tls, eventLoop: eventLoop)
                created[key] = pool
                return pool
            }
        }
    }

    /// The pool for the exchange's current node; found by address and TLS settings when the
    /// exchange began under an earlier configuration.
    func pool(for exchange: Exchange) -> NodePool {
        let service = exchange.decision.serviceIndex
        if exchange.runtime === runtime { return pools[service][exchange.node] }
        let key = exchange.runtime.poolKey(service: service, node: exchange.node)
        if let pool = pools.joined().first(where: { $0.key == key }) { return pool }
        let orphan = NodePool(key: key, tls: exchange.runtime.nodeTLS[service][exchange.node], eventLoop: eventLoop)
        orphan.retire()  // retired from the start: its connections are not kept
        return orphan
    }

    private var connections: [ObjectIdentifier: ProxyHandler] = [:]

    func connectionOpened(_ handler: ProxyHandler) {
        connections[ObjectIdentifier(handler)] = handler
    }

    func connectionClosed(_ handler: ProxyHandler) {
        connections[ObjectIdentifier(handler)] = nil
    }

    /// HTTP/2 client connections (each of their streams is in ``connections`` while it is open).
    private var http2Connections: [ObjectIdentifier: HTTP2Connection] = [:]

    func http2ConnectionOpened(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = connection
    }

    func http2ConnectionClosed(_ connection: HTTP2Connection) {
        http2Connections[ObjectIdentifier(connection)] = nil
    }

    var openConnectionCount: Int { connections.count + http2Connections.count }

    /// Closes every client connection now; returns how many there were.
    func closeAllConnections() -> Int {
        let open = Array(connections.values)
        for handler in open { handler.closeNow() }
        let openHTTP2 = Array(http2Connections.values)
        for connection in openHTTP2 { connection.closeNow() }
        return open.count + openHTTP2.count
    }

    /// Starts draining this loop: idle connections close now, busy ones after their exchange;
    /// HTTP/2 connections are sent GOAWAY and close when their streams have finished.
    func drain() {
        isDraining = true
        for handler in connections.values { handler.closeIfIdle() }
        for connection in http2Connections.values { connection.quiesce() }
    }

    /// A connection still sending its first head this long after its accept is closed when the
    /// server is at its connection cap: long enough for any client that means to send a request
    /// at once (one round trip), short enough that clients waiting in the backlog are let in
    /// within seconds rather than after ``Timeouts/clientHead``.
    static let firstHeadGraceAtCap = TimeAmount.seconds(1)

    /// At the connection cap, closes (408) the connections still sending their first request head
    /// after ``firstHeadGraceAtCap``: they hold places that clients waiting in the backlog would
    /// use at once, and a client that has not managed one head in that time is slow or hostile.
    /// Connections that have been served keep their place (``Timeouts/clientIdle`` bounds them).
    private func shedFirstHeadsAtCap(now: NIODeadline) {
        guard connectionLimit?.isAtCap == true else { return }
        let openedBefore = now - Self.firstHeadGraceAtCap
        var closed = 0
        for handler in connections.values where handler.closeIfStillInFirstHead(openedBefore: openedBefore) { closed += 1 }
        guard closed > 0 else { return }
        logs.events.warning("connection limit reached: closed connections still sending their first request head", metadata: [
            "closed": "\(closed)", "max_connections": "\(connectionLimit?.cap ?? 0)",
        ])
    }

    private func scheduleIdleSweep() {
        eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            let clock = NIODeadline.now()
            for pool in pools.joined() { pool.closeIdle(olderThan: clock - TimeAmount(runtime.config.timeouts.upstreamIdle)) }
            policy.sweep(now: clock.uptimeNanoseconds)
            shedFirstHeadsAtCap(now: clock)
            let limits = ConnectionTimeouts.Limits(runtime.config.timeouts)
            for handler in connections.values { handler.checkTimeouts(limits: limits, now: clock) }
            for connection in http2Connections.values { connection.closeIfIdle(since: clock - limits.clientIdle) }
            scheduleIdleSweep()
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .milliseconds(duration.milliseconds)
    }
}
