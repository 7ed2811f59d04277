import Atomics
import FulcrumCore
import FulcrumHTTP1
import Logging
import NIOCore
import NIOHTTP1

/// One event loop's traffic policy: the traffic splits, rate limiters, circuit breakers,
/// balancers, health view and in-flight limits that decide whether a routed request goes to a
/// node and to which, and that learn from how each exchange ended. It does no I/O and reads no
/// clock: every decision takes `now` (monotonic nanoseconds), so it is unit-tested without
/// sockets and without sleeping. Created for and only touched on its loop, like ``LoopContext``.
final class LoopPolicy {
    private(set) var runtime: RuntimeConfig
    let logger: Logger
    var random = FastRandom()
    /// Balancers per service of `runtime`.
    private(set) var balancers: [ServiceBalancer]
    /// Circuit breakers per service, for this loop's share of the traffic.
    private(set) var breakers: [CircuitBreaker?]
    /// Rate limiter states per route and per service, for this loop's share of the traffic.
    private(set) var routeLimiters: [KeyedLimiter?]
    private(set) var serviceLimiters: [KeyedLimiter?]
    /// 429s per route and per service since the configuration was installed, and at the last log line.
    private(set) var routeRejections: [Int] = []
    private(set) var serviceRejections: [Int] = []
    private var routeRejectionsLogged: [Int] = []
    private var serviceRejectionsLogged: [Int] = []
    /// Ejected and down nodes, as last published by the health board.
    private(set) var health: HealthSnapshot
    /// Where failure streaks are reported; `nil` in tests without a server.
    private let healthBoard: HealthBoard?
    /// Consecutive failures per service and node seen on this loop.
    private var failureStreaks: [[Int]]
    /// Ramps of services with `slow_start`, and which nodes were usable at the last sweep.
    private var slowStarts: [SlowStart?]
    private var wasUsable: [[Bool]]

    /// Access rules and CC protection.
    let access: AccessGuard

    init(runtime: RuntimeConfig, logger: Logger, healthBoard: HealthBoard?, banBoard: BanBoard? = nil) {
        self.runtime = runtime
        self.logger = logger
        self.healthBoard = healthBoard
        self.access = AccessGuard(runtime: runtime, logger: logger, banBoard: banBoard)
        self.health = HealthSnapshot.empty(for: runtime)
        self.balancers = runtime.config.services.map(ServiceBalancer.init(service:))
        self.breakers = runtime.config.services.map { $0.circuitBreaker.map { CircuitBreaker(policy: $0.policy) } }
        self.routeLimiters = runtime.config.routes.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        self.serviceLimiters = runtime.config.services.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        self.failureStreaks = runtime.config.services.map { Array(repeating: 0, count: $0.nodes.count) }
        self.slowStarts = runtime.config.services.map { service in service.slowStart.map { SlowStart(nodeCount: service.nodes.count, duration: $0) } }
        self.wasUsable = runtime.config.services.map { Array(repeating: true, count: $0.nodes.count) }
        resetRejectionCounts()
    }

    // MARK: admission

    /// What the policy decided for a routed request.
    enum Admission {
        /// Send it to `node` (after `delay` nanoseconds when a leaky bucket asks it to wait).
        case proceed(Admitted)
        /// Answer it with Fulcrum's own response.
        case refuse(Refusal)
    }

    struct Admitted {
        /// The route's decision after its traffic split chose the service.
        var decision: RouteDecision
        var node: Int
        /// The nodes of the service the request may use (a split target's node group); `nil`: all.
        var nodeGroup: [Bool]?
        /// A `Set-Cookie` for the response (a split's sticky cookie).
        var setCookie: String?
        var breakerAdmission: CircuitBreaker.Admission?
        /// In-flight slots taken, given back by ``finished(_:status:now:)``.
        var heldSlots: [ManagedAtomic<Int>]
        var delay: Int64
    }

    struct Refusal {
        var status: HTTPResponseStatus
        /// What the router made of the request, for the statistics; `nil` before routing.
        var routed: Routed?
        /// Why, for the error page.
        var detail: String?
        /// A body of the route's own (a rate limit's), instead of the error page.
        var body: String?
        var extraHeaders: [(String, String)] = []
    }

    /// Decides where a routed request goes: the route's traffic split, then the route's and the
    /// service's rate limits, the service's circuit breaker, a usable node, and the route's and
    /// the service's in-flight limits. A refusal gives back what the steps before it took.
    /// Reads nothing a route does not use: a route without limits, breaker or health checks
    /// costs a balancer pick.
    /// `clientIP` is the client's address as text (the rate limits' key), `client` as a number.
    func admit(_ request: HeadRoutingRequest, routed: RouteDecision, clientIP: String, client: IPAddress, now: UInt64) -> Admission {
        let runtime = self.runtime
        // a traffic split chooses the target after routing and before limits and balancing
        // (constants from here on: a variable captured by the closures below would be boxed)
        let (decision, nodeGroup, setCookie) = split(routed, request)
        let service = decision.serviceIndex
        // names are only needed when refusing: looked up then, not on every request
        var serviceName: String { runtime.config.services[service].name }

        // 0. the access rules of the service and the route
        if access.hasRules(service: service, route: decision.routeIndex),
            let refusal = access.screen(request, client: client, service: service, routed: .service(decision))
        {
            return .refuse(refusal)
        }

        // 1. rate limits, the route's then the service's (a leaky bucket may ask for a delay)
        var delay: Int64 = 0
        if let routeIndex = decision.routeIndex, let limit = routeLimiters[routeIndex]?.limit {
            let outcome = routeLimiters[routeIndex]!.acquire(key: Self.limitKey(limit.key, request, clientIP), now: now)
            if let refusal = Self.refusal(outcome, limit: limit, decision: decision, delay: &delay) {
                routeRejections[routeIndex] += 1
                return .refuse(refusal)
            }
        }
        if let limit = serviceLimiters[service]?.limit {
            let outcome = serviceLimiters[service]!.acquire(key: Self.limitKey(limit.key, request, clientIP), now: now)
            if let refusal = Self.refusal(outcome, limit: limit, decision: decision, delay: &delay) {
                serviceRejections[service] += 1
                return .refuse(refusal)
            }
        }

        // 2. the service's circuit breaker
        let admission: CircuitBreaker.Admission?
        if let before = breakers[service]?.state {
            let verdict = breakers[service]!.admit(now: now)
            if case .open = before, case .trial = verdict {
                logger.warning("circuit half-open (on one event loop)", metadata: ["service": "\(serviceName)"])
            }
            if case .rejected(let retryAfter) = verdict {
                return .refuse(Refusal(
                    status: .serviceUnavailable, routed: .service(decision), detail: "circuit open for service '\(serviceName)'",
                    extraHeaders: [("Retry-After", String(Self.wholeSeconds(retryAfter)))]))
            }
            admission = verdict
        } else {
            admission = nil
        }
        /// Refuses after the breaker admitted: its admission is given back.
        func refuse(_ detail: String) -> Admission {
            if let admission { breakers[service]?.cancel(admission) }
            return .refuse(Refusal(status: .serviceUnavailable, routed: .service(decision), detail: detail))
        }

        // 3. a usable node
        var node: Int?
        if let pinned = decision.pinnedNode {
            node = isUsable(pinned, service: service, nodeGroup: nodeGroup, runtime: runtime, now: now) ? pinned : nil
        } else {
            let health = self.health
            let checksHealth = health.generation == runtime.generation && health.hasUnusable[service]
            node = balancers[service].pick(for: request, random: &random, now: now) { node in
                (nodeGroup?[node] ?? true) && (!checksHealth || !health.isUnusable(service: service, node: node, now: now))
            }
        }
        if node == nil, runtime.config.services[service].whenNoNode == .panic {
            // panic mode: health is ignored rather than refusing everything
            node = decision.pinnedNode ?? balancers[service].pick(for: request, random: &random, isEligible: { nodeGroup?[$0] ?? true })
        }
        guard let node else { return refuse("no usable node in service '\(serviceName)'") }

        // 4. concurrency limits, shared by all event loops
        var slots: [ManagedAtomic<Int>] = []
        if let routeIndex = decision.routeIndex, let counter = runtime.routeInFlight[routeIndex] {
            guard RuntimeConfig.takeSlot(counter, limit: runtime.config.routes[routeIndex].maxInFlight ?? 0) else {
                return refuse("too many requests in flight for route '\(runtime.router.routeName(decision.routeIndex))'")
            }
            slots.append(counter)
        }
        if let counter = runtime.serviceInFlight[service] {
            guard RuntimeConfig.takeSlot(counter, limit: runtime.config.services[service].maxInFlight ?? 0) else {
                for slot in slots { slot.wrappingDecrement(ordering: .relaxed) }
                return refuse("too many requests in flight for service '\(serviceName)'")
            }
            slots.append(counter)
        }
        balancers[service].started(node)
        return .proceed(Admitted(
            decision: decision, node: node, nodeGroup: nodeGroup, setCookie: setCookie, breakerAdmission: admission,
            heldSlots: slots, delay: delay))
    }

    /// The target a route's traffic split chooses for this request: the service, the group of
    /// its nodes the request may use, and the sticky cookie to set. The route's own target when it
    /// has no split.
    private func split(_ routed: RouteDecision, _ request: HeadRoutingRequest) -> (RouteDecision, nodeGroup: [Bool]?, setCookie: String?) {
        guard let routeIndex = routed.routeIndex, let split = runtime.splits[routeIndex] else { return (routed, nil, nil) }
        let choice = split.decider.decide(request, random: &random)
        var decision = routed
        decision.serviceIndex = split.services[choice.target]
        return (decision, split.groups[choice.target], choice.setsCookie ? split.cookies[choice.target] : nil)
    }

    /// Whether `node` of `service` may take a request: in the request's node group, and neither
    /// down (probes) nor ejected (passive health) in the health board's view of `runtime`. The
    /// one rule for a first choice, a pinned node and a retry.
    private func isUsable(_ node: Int, service: Int, nodeGroup: [Bool]?, runtime: RuntimeConfig, now: UInt64) -> Bool {
        (nodeGroup?[node] ?? true) && (health.generation != runtime.generation || !health.isUnusable(service: service, node: node, now: now))
    }

    /// The state key of a rate limit for this request; requests without the key share one state.
    static func limitKey(_ key: RateLimit.Key, _ request: HeadRoutingRequest, _ clientIP: String) -> String {
        switch key {
        case .clientIP: return clientIP
        case .header(let name): return request.header(name).map(String.init) ?? ""
        case .cookie(let name): return request.cookie(name).map(String.init) ?? ""
        case .query(let name): return request.queryParameter(name).map(String.init) ?? ""
        case .whole: return ""
        }
    }

    /// A rate limiter's decision: the 429 to answer, or `nil` to go on (after `delay` at the latest).
    private static func refusal(_ outcome: KeyedLimiter.Decision, limit: RateLimit, decision: RouteDecision, delay: inout Int64) -> Refusal? {
        switch outcome {
        case .untracked, .limited(.allowed):
            return nil
        case .limited(.delayed(let wait, _, _)):
            delay = max(delay, wait.nanoseconds)
            return nil
        case .limited(.rejected(let retryAfter, let reset)):
            return Refusal(
                status: .tooManyRequests, routed: .service(decision), body: limit.body,
                extraHeaders: [
                    ("Retry-After", String(wholeSeconds(retryAfter))), ("RateLimit-Limit", String(limit.advertisedLimit)),
                    ("RateLimit-Remaining", "0"), ("RateLimit-Reset", String(wholeSeconds(reset))),
                ])
        }
    }

    /// Seconds for `Retry-After` and `RateLimit-Reset`: rounded up, at least 1.
    private static func wholeSeconds(_ duration: Duration) -> Int64 {
        max(1, (duration.nanoseconds + 999_999_999) / 1_000_000_000)
    }

    // MARK: retries and outcomes

    /// Another node for an exchange whose node failed: a usable one other than the failed node,
    /// in the exchange's node group; `nil` when there is none, or when the exchange began under
    /// an earlier configuration (its balancer is gone).
    func retryNode(for exchange: Exchange, clientIP: Substring, now: UInt64) -> Int? {
        guard exchange.decision.pinnedNode == nil, exchange.runtime === runtime,
            // the target was accepted when the request started: normalising it again cannot fail
            let request = try? HeadRoutingRequest(head: exchange.head, clientIP: clientIP, encodedSlashes: runtime.config.encodedSlashes)
        else { return nil }
        let (service, failed) = (exchange.decision.serviceIndex, exchange.node)
        return balancers[service].pick(for: request, random: &random) { node in
            node != failed && self.isUsable(node, service: service, nodeGroup: exchange.nodeGroup, runtime: exchange.runtime, now: now)
        }
    }

    /// Moves an exchange's in-flight count to `node` (a retry); the node left counts as a failure
    /// for the latency-aware strategy.
    func move(_ exchange: Exchange, to node: Int, now: UInt64) {
        if exchange.runtime === runtime {
            let service = exchange.decision.serviceIndex
            balancers[service].finished(exchange.node)
            if balancers[service].usesLatency {
                balancers[service].recordLatency(exchange.node, nanoseconds: Int64(now - exchange.start.uptimeNanoseconds), failed: true, now: now)
            }
            balancers[service].started(node)
        }
        exchange.node = node
    }

    /// Records how an exchange with a node ended, for passive health and the circuit breaker:
    /// `status` is the response status, `nil` for a connection failure or a timeout. Only
    /// exchanges of the configuration in use count.
    /// `now` is read only by a service with a breaker or passive health.
    func recordOutcome(_ exchange: Exchange, status: UInt?, now readClock: @autoclosure () -> UInt64) {
        exchange.outcomeRecorded = true
        guard exchange.runtime === runtime else { return }
        let service = exchange.decision.serviceIndex
        // read the two settings, not a copy of the whole service, on every response
        let breakerSettings = runtime.config.services[service].circuitBreaker
        let passiveHealth = runtime.config.services[service].passiveHealth
        guard breakerSettings != nil || passiveHealth != nil else { return }
        let now = readClock()
        if let breaker = breakerSettings, let admission = exchange.breakerAdmission {
            let failed = status.map { breaker.failureStatuses.contains(Int($0)) } ?? true
            let latency = Duration.nanoseconds(Int64(now - exchange.start.uptimeNanoseconds))
            if let change = breakers[service]?.record(failed ? .failure : .success(latency: latency), admission: admission, now: now) {
                logger.warning("circuit \(change.name) (on one event loop)", metadata: ["service": "\(runtime.config.services[service].name)"])
            }
        }
        guard let passive = passiveHealth else { return }
        let failed = status.map { passive.failureStatuses.contains(Int($0)) } ?? true
        if !failed {
            failureStreaks[service][exchange.node] = 0
            return
        }
        failureStreaks[service][exchange.node] += 1
        guard failureStreaks[service][exchange.node] >= passive.policy.consecutiveFailures else { return }
        failureStreaks[service][exchange.node] = 0
        healthBoard?.reportFailureStreak(generation: runtime.generation, service: service, node: exchange.node, now: now)
    }

    /// Gives back what an exchange took when it ends: its in-flight slots, an unused breaker
    /// admission, its balancer count (with its latency for the latency-aware strategy; a failure
    /// counts at least as the failure penalty, so fast errors do not attract traffic).
    func finished(_ exchange: Exchange, status: UInt, now: UInt64) {
        for slot in exchange.heldSlots { slot.wrappingDecrement(ordering: .relaxed) }
        exchange.heldSlots = []
        guard exchange.runtime === runtime else { return }
        let service = exchange.decision.serviceIndex
        if let admission = exchange.breakerAdmission, !exchange.outcomeRecorded {
            breakers[service]?.cancel(admission)
        }
        balancers[service].finished(exchange.node)
        if balancers[service].usesLatency {
            balancers[service].recordLatency(
                exchange.node, nanoseconds: Int64(now - exchange.start.uptimeNanoseconds), failed: status >= 500, now: now)
        }
    }

    // MARK: configuration and health

    /// Switches to a new configuration with the health board's snapshot for it. An unchanged
    /// breaker keeps its state (an open circuit stays open across a reload); nodes added since
    /// `previous` ramp up when their service has `slow_start`.
    func install(_ new: RuntimeConfig, now: UInt64) {
        let previous = runtime.config
        balancers = new.config.services.map(ServiceBalancer.init(service:))
        failureStreaks = new.config.services.map { Array(repeating: 0, count: $0.nodes.count) }
        let oldBreakers = breakers
        breakers = new.config.services.map { service in
            if let index = previous.services.firstIndex(where: { $0.name == service.name }), previous.services[index].circuitBreaker == service.circuitBreaker {
                return oldBreakers[index]
            }
            return service.circuitBreaker.map { CircuitBreaker(policy: $0.policy) }
        }
        routeLimiters = new.config.routes.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        serviceLimiters = new.config.services.map { $0.rateLimit.map(KeyedLimiter.init(limit:)) }
        if health.generation != new.generation {
            health = healthBoard?.snapshot(for: new.generation) ?? HealthSnapshot.empty(for: new)
        }
        runtime = new
        access.install(new)
        beginSlowStarts(previous: previous, now: now)
        resetRejectionCounts()
    }

    /// Takes a snapshot from the health board if it belongs to the configuration in use.
    func install(_ snapshot: HealthSnapshot) {
        if snapshot.generation == runtime.generation { health = snapshot }
    }

    /// New slow-start state: nodes added since `previous` ramp from now. A node is the same node
    /// while its name and address are (as for its health).
    private func beginSlowStarts(previous: FulcrumConfig, now: UInt64) {
        let config = runtime.config
        slowStarts = config.services.map { service in
            guard let duration = service.slowStart else { return nil }
            var ramp = SlowStart(nodeCount: service.nodes.count, duration: duration)
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

    /// Once a second: expired limiter keys go, nodes that became usable (healthy again, ejection
    /// over) start ramping, ramping services get their current weights, and the limits that
    /// refused requests during the second are logged.
    func sweep(now: UInt64) {
        for index in routeLimiters.indices { routeLimiters[index]?.sweep(now: now) }
        for index in serviceLimiters.indices { serviceLimiters[index]?.sweep(now: now) }
        logRejections()
        access.sweep(now: now)
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

    private func logRejections() {
        for (index, count) in routeRejections.enumerated() where count != routeRejectionsLogged[index] {
            logger.notice("rate limit rejected requests", metadata: [
                "route": "\(runtime.config.routes[index].name)", "count": "\(count - routeRejectionsLogged[index])", "period": "1s",
            ])
        }
        for (index, count) in serviceRejections.enumerated() where count != serviceRejectionsLogged[index] {
            logger.notice("rate limit rejected requests", metadata: [
                "service": "\(runtime.config.services[index].name)", "count": "\(count - serviceRejectionsLogged[index])", "period": "1s",
            ])
        }
        routeRejectionsLogged = routeRejections
        serviceRejectionsLogged = serviceRejections
    }
}
