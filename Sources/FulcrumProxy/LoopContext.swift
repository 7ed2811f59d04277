import FulcrumCore
import NIOCore

/// Everything one event loop needs to serve requests without locks: the configuration it is
/// currently using, its balancers, its random generator and its upstream connection pools.
/// Created for and only touched on its own event loop.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var runtime: RuntimeConfig
    /// Balancers per service of `runtime`.
    var balancers: [ServiceBalancer]
    /// Pools per service and node of `runtime`.
    private(set) var pools: [[NodePool]]
    var random = FastRandom()
    let logs: ProxyLogs
    /// Set when draining: connections close after their current exchange.
    var isDraining = false
    /// Upstream-response timeouts of this loop's exchanges.
    let responseTimer: ResponseTimer
    /// Connections with writes to flush when the loop has handled its current batch of events.
    let endOfTickFlushes: EndOfTickFlushes
    /// Traffic counts by route, service and node.
    var statistics: LoopStatistics
    /// Ramps of services with `slow_start`, and which nodes were usable at the last sweep.
    private var slowStarts: [SlowStart?]
    private var wasUsable: [[Bool]]

    /// Ejected nodes, as last published by the health board.
    var health: HealthSnapshot
    /// Where failure streaks are reported; `nil` in handler tests without a server.
    let healthBoard: HealthBoard?
    /// The server's connection cap, watched to shed connections still sending their first head
    /// while it holds the listeners; `nil` in handler tests without a server.
    private let connectionLimit: ConnectionLimit?
    /// Consecutive failures per service and node seen on this loop.
    private var failureStreaks: [[Int]]
    /// Circuit breakers per service, for this loop's share of the traffic.
    var breakers: [CircuitBreaker?]
    /// Rate limiter states per route and per service, for this loop's share of the traffic.
    var routeLimiters: [KeyedLimiter?]
    var serviceLimiters: [KeyedLimiter?]
    /// 429s per route and per service since the configuration was installed, and at the last log line.
    private(set) var routeRejections: [Int] = []
    private(set) var serviceRejections: [Int] = []
    private var routeRejectionsLogged: [Int] = []
    private var serviceRejectionsLogged: [Int] = []

    init(eventLoop: EventLoop, runtime: RuntimeConfig, logs: ProxyLogs, healthBoard: HealthBoard? = nil, connectionLimit: ConnectionLimit? = nil) {
        self.eventLoop = eventLoop
        self.responseTimer = ResponseTimer(eventLoop: eventLoop)
        self.endOfTickFlushes = EndOfTickFlushes(eventLoop: eventLoop)
        self.runtime = runtime
        self.logs = logs
        self.healthBoard = healthBoard
        self.connectionLimit = connectionLimit
        self.health = HealthSnapshot.empty(for: runtime)
        self.failureStreaks = runtime.config.services.map { Array(repeating: 0, count: $0.nodes.count) }
        self.breakers = runtime.config.services.map { $0.circuitBreaker.map { CircuitBreaker(policy: $0.policy) } }
        self.routeLimiters = runtime.config.routes.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        self.serviceLimiters = runtime.config.services.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        self.balancers = runtime.config.services.map(ServiceBalancer.init(service:))
        self.statistics = LoopStatistics(config: runtime.config)
        self.slowStarts = runtime.config.services.map { service in service.slowStart.map { SlowStart(nodeCount: service.nodes.count, duration: $0) } }
        self.wasUsable = runtime.config.services.map { Array(repeating: true, count: $0.nodes.count) }
        self.pools = []
        resetRejectionCounts()
        self.pools = Self.makePools(for: runtime, reusing: [:], eventLoop: eventLoop)
        self.scheduleIdleSweep()
    }

    /// Switches to a new configuration, with the health board's current snapshot for it. Pools of
    /// nodes that still exist (same address) are kept, with their idle connections; pools of
    /// removed nodes close their idle connections.
    func install(_ runtime: RuntimeConfig) {
        var existing: [SocketAddress: NodePool] = [:]
        for pool in pools.joined() { existing[pool.address] = pool }
        let newPools = Self.makePools(for: runtime, reusing: existing, eventLoop: eventLoop)
        let kept = Set(newPools.joined().map { ObjectIdentifier($0) })
        for pool in existing.values where !kept.contains(ObjectIdentifier(pool)) { pool.closeIdle() }
        self.pools = newPools
        self.balancers = runtime.config.services.map(ServiceBalancer.init(service:))
        self.failureStreaks = runtime.config.services.map { Array(repeating: 0, count: $0.nodes.count) }
        let previous = self.runtime.config.services
        let oldBreakers = self.breakers
        self.breakers = runtime.config.services.map { service in
            // an unchanged breaker keeps its state (an open circuit stays open across a reload)
            if let index = previous.firstIndex(where: { $0.name == service.name }), previous[index].circuitBreaker == service.circuitBreaker {
                return oldBreakers[index]
            }
            return service.circuitBreaker.map { CircuitBreaker(policy: $0.policy) }
        }
        self.routeLimiters = runtime.config.routes.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        self.serviceLimiters = runtime.config.services.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        if health.generation != runtime.generation {
            health = healthBoard?.snapshot(for: runtime.generation) ?? HealthSnapshot.empty(for: runtime)
        }
        statistics.install(runtime.config)
        beginSlowStarts(for: runtime.config, previous: self.runtime.config)
        self.runtime = runtime
        resetRejectionCounts()
    }

    /// New slow-start state for `config`: nodes added since `previous` ramp from now.
    private func beginSlowStarts(for config: FulcrumConfig, previous: FulcrumConfig) {
        let now = NIODeadline.now().uptimeNanoseconds
        slowStarts = config.services.map { service in
            guard let duration = service.slowStart else { return nil }
            var ramp = SlowStart(nodeCount: service.nodes.count, duration: duration)
            // a node is the same node while its name and address are (as for its health)
            let before = previous.service(named: service.name)?.nodes ?? []
            for (index, node) in service.nodes.enumerated()
            where !before.contains(where: { $0.name == node.name && $0.host == node.host && $0.port == node.port }) {
                ramp.begin(index, now: now)
            }
            return ramp
        }
        wasUsable = config.services.map { Array(repeating: true, count: $0.nodes.count) }
        for index in slowStarts.indices where slowStarts[index]?.isRamping == true {
            balancers[index].reweight(slowStarts[index]!.weights(base: config.services[index].nodes.map(\.effectiveWeight), now: now))
        }
    }

    /// Once a second: nodes that became usable (healthy again, ejection over) start ramping, and
    /// ramping services get their current weights.
    private func advanceSlowStarts(now: UInt64) {
        for service in slowStarts.indices {
            guard var ramp = slowStarts[service] else { continue }
            let checksHealth = health.generation == runtime.generation
            let wasRamping = ramp.isRamping
            for node in wasUsable[service].indices {
                let usable = !checksHealth || !health.isUnusable(service: service, node: node, now: now)
                if usable, !wasUsable[service][node] { ramp.begin(node, now: now) }
                wasUsable[service][node] = usable
            }
            guard wasRamping || ramp.isRamping else { continue }
            balancers[service].reweight(ramp.weights(base: runtime.config.services[service].nodes.map(\.effectiveWeight), now: now))
            slowStarts[service] = ramp
        }
    }

    private func resetRejectionCounts() {
        routeRejections = Array(repeating: 0, count: runtime.config.routes.count)
        serviceRejections = Array(repeating: 0, count: runtime.config.services.count)
        routeRejectionsLogged = routeRejections
        serviceRejectionsLogged = serviceRejections
    }

    /// Counts a 429 of a route's (or, with `route` nil, the service's) rate limit.
    func countRejection(route: Int?, service: Int) {
        if let route { routeRejections[route] += 1 } else { serviceRejections[service] += 1 }
    }

    /// Logs, once a second, the limits that refused requests during that second.
    private func logRejections() {
        for (index, count) in routeRejections.enumerated() where count != routeRejectionsLogged[index] {
            logs.events.notice("rate limit rejected requests", metadata: [
                "route": "\(runtime.config.routes[index].name)", "count": "\(count - routeRejectionsLogged[index])", "period": "1s",
            ])
        }
        for (index, count) in serviceRejections.enumerated() where count != serviceRejectionsLogged[index] {
            logs.events.notice("rate limit rejected requests", metadata: [
                "service": "\(runtime.config.services[index].name)", "count": "\(count - serviceRejectionsLogged[index])", "period": "1s",
            ])
        }
        routeRejectionsLogged = routeRejections
        serviceRejectionsLogged = serviceRejections
    }

    /// Takes a snapshot from the health board if it belongs to the configuration in use.
    func install(_ snapshot: HealthSnapshot) {
        if snapshot.generation == runtime.generation { health = snapshot }
    }

    /// Records how an exchange with a node ended, for passive health and the circuit breaker:
    /// `status` is the response status, `nil` for a connection failure or a timeout. Only
    /// exchanges of the configuration in use count.
    func recordOutcome(_ exchange: Exchange, status: UInt?) {
        exchange.outcomeRecorded = true
        guard exchange.runtime === runtime else { return }
        let service = exchange.decision.serviceIndex
        // read the two settings, not a copy of the whole service, on every response
        if let breaker = runtime.config.services[service].circuitBreaker, let admission = exchange.breakerAdmission {
            let now = NIODeadline.now().uptimeNanoseconds
            let failed = status.map { breaker.failureStatuses.contains(Int($0)) } ?? true
            let latency = Duration.nanoseconds(Int64(now - exchange.start.uptimeNanoseconds))
            if let change = breakers[service]?.record(failed ? .failure : .success(latency: latency), admission: admission, now: now) {
                logs.events.warning("circuit \(change.name) (on one event loop)", metadata: ["service": "\(runtime.config.services[service].name)"])
            }
        }
        guard let passive = runtime.config.services[service].passiveHealth else { return }
        let failed = status.map { passive.failureStatuses.contains(Int($0)) } ?? true
        if !failed {
            failureStreaks[service][exchange.node] = 0
            return
        }
        failureStreaks[service][exchange.node] += 1
        guard failureStreaks[service][exchange.node] >= passive.policy.consecutiveFailures else { return }
        failureStreaks[service][exchange.node] = 0
        healthBoard?.reportFailureStreak(
            generation: runtime.generation, service: service, node: exchange.node, now: NIODeadline.now().uptimeNanoseconds)
    }

    private static func makePools(for runtime: RuntimeConfig, reusing existing: [SocketAddress: NodePool], eventLoop: EventLoop) -> [[NodePool]] {
        var created: [SocketAddress: NodePool] = existing
        return runtime.nodeAddresses.map { addresses in
            addresses.map { address in
                if let pool = created[address] { return pool }
                let pool = NodePool(address: address, eventLoop: eventLoop)
                created[address] = pool
                return pool
            }
        }
    }

    /// The pool for the exchange's current node; found by address when the exchange began under
    /// an earlier configuration.
    func pool(for exchange: Exchange) -> NodePool {
        let service = exchange.decision.serviceIndex
        if exchange.runtime === runtime { return pools[service][exchange.node] }
        let address = exchange.runtime.nodeAddresses[service][exchange.node]
        if let pool = pools.joined().first(where: { $0.address == address }) { return pool }
        let orphan = NodePool(address: address, eventLoop: eventLoop)
        orphan.closeIdle()  // retired from the start: its connections are not kept
        return orphan
    }

    private var connections: [ObjectIdentifier: ProxyHandler] = [:]

    func connectionOpened(_ handler: ProxyHandler) {
        connections[ObjectIdentifier(handler)] = handler
    }

    func connectionClosed(_ handler: ProxyHandler) {
        connections[ObjectIdentifier(handler)] = nil
    }

    var openConnectionCount: Int { connections.count }

    /// Closes every client connection now; returns how many there were.
    func closeAllConnections() -> Int {
        let open = Array(connections.values)
        for handler in open { handler.closeNow() }
        return open.count
    }

    /// Starts draining this loop: idle connections close now, busy ones after their exchange.
    func drain() {
        isDraining = true
        for handler in connections.values { handler.closeIfIdle() }
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
            let limit = NIODeadline.now() - TimeAmount(runtime.config.timeouts.upstreamIdle)
            for pool in pools.joined() { pool.closeIdle(olderThan: limit) }
            let now = NIODeadline.now().uptimeNanoseconds
            for index in routeLimiters.indices { routeLimiters[index]?.sweep(now: now) }
            for index in serviceLimiters.indices { serviceLimiters[index]?.sweep(now: now) }
            logRejections()
            advanceSlowStarts(now: now)
            let timeouts = runtime.config.timeouts
            let clock = NIODeadline.now()
            shedFirstHeadsAtCap(now: clock)
            let (clientStall, upstreamStall) = (TimeAmount(timeouts.clientStall), TimeAmount(timeouts.upstreamStall))
            let (tunnelIdle, idleSince) = (TimeAmount(timeouts.tunnelIdle), clock - TimeAmount(timeouts.clientIdle))
            for handler in connections.values {
                handler.closeIfIdle(since: idleSince, headSince: clock - TimeAmount(timeouts.clientHead))
                handler.closeIfFlushStalled(since: clock - clientStall)
                handler.checkStall(now: clock, clientStall: clientStall, upstreamStall: upstreamStall, tunnelIdle: tunnelIdle)
            }
            scheduleIdleSweep()
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .milliseconds(duration.milliseconds)
    }
}
