/// The balancing state of one service on one event loop: the strategy's running state and the
/// requests in flight per node. Owned by a single event loop (no locks); round robin is therefore
/// exact per loop, and least-connections sees the load of its own loop.
public struct ServiceBalancer: Sendable {
    private enum Picker: Sendable {
        case roundRobin(SmoothWeightedRoundRobin)
        case random(WeightedRandom)
        case leastConnections(PowerOfTwoChoices)
        case latency(PeakEWMA)
        case hash(ConsistentHashRing, HashKey, fallback: WeightedRandom)
        case pinned(Int)
    }

    private var picker: Picker
    private let strategy: BalancingStrategy
    private let nodeNames: [String]
    /// Requests in flight per node on this loop.
    public private(set) var inFlight: [Int]
    /// The weights in use (the configured ones, or lower during a slow start).
    public private(set) var weights: [Int]
    /// Whether the strategy uses response times (then `pick` needs `now`, and responses are recorded).
    public let usesLatency: Bool

    public init(service: Service) {
        strategy = service.strategy
        nodeNames = service.nodes.map(\.name)
        weights = service.nodes.map(\.effectiveWeight)
        inFlight = Array(repeating: 0, count: service.nodes.count)
        usesLatency = if case .latency = service.strategy { true } else { false }
        switch service.strategy {
        case .pinned(let name): picker = .pinned(service.nodeIndex(named: name) ?? 0)
        case .latency(let settings): picker = .latency(PeakEWMA(weights: weights, settings: settings))
        default: picker = .pinned(0)
        }
        reweight(weights)
    }

    /// Uses other weights from now on (slow start); latency estimates are kept, round-robin
    /// positions start over.
    public mutating func reweight(_ weights: [Int]) {
        self.weights = weights
        switch strategy {
        case .roundRobin: picker = .roundRobin(SmoothWeightedRoundRobin(weights: weights))
        case .random: picker = .random(WeightedRandom(weights: weights))
        case .leastConnections: picker = .leastConnections(PowerOfTwoChoices(weights: weights))
        case .hash(let key):
            picker = .hash(ConsistentHashRing(names: nodeNames, weights: weights), key, fallback: WeightedRandom(weights: weights))
        case .latency:
            if case .latency(var ewma) = picker {
                ewma.reweight(weights)
                picker = .latency(ewma)
            }
        case .pinned: break
        }
    }

    /// Picks a node for `request`, skipping nodes for which `isEligible` is false (already tried,
    /// or later: unhealthy). Returns `nil` when no eligible node can be chosen.
    /// `now` (monotonic nanoseconds) matters to the latency-aware strategy only.
    public mutating func pick<Request: RoutingRequest>(
        for request: Request, random: inout FastRandom, now: UInt64 = 0, isEligible: (Int) -> Bool
    ) -> Int? {
        switch picker {
        case .roundRobin(var state):
            picker = .pinned(0)  // release the payload so the mutation below does not copy it
            let choice = state.pick(isEligible: isEligible)
            picker = .roundRobin(state)
            return choice
        case .random(let sampler):
            return sampler.pick(using: &random, isEligible: isEligible)
        case .leastConnections(let p2c):
            return p2c.pick(inFlight: inFlight, using: &random, isEligible: isEligible)
        case .latency(let ewma):
            return ewma.pick(inFlight: inFlight, now: now, using: &random, isEligible: isEligible)
        case .hash(let ring, let key, let fallback):
            guard let value = Self.keyValue(key, of: request) else {
                return fallback.pick(using: &random, isEligible: isEligible)
            }
            return ring.node(for: StableHash.hash(value.utf8), isEligible: isEligible)
        case .pinned(let node):
            return isEligible(node) ? node : nil
        }
    }

    /// The request's value for a hash key; `nil` when the request does not carry it
    /// (such requests are spread by weighted random choice instead).
    public static func keyValue<Request: RoutingRequest>(_ key: HashKey, of request: Request) -> Substring? {
        switch key {
        case .clientIP: return request.clientIP
        case .path: return request.path
        case .header(let name): return request.header(name)
        case .cookie(let name): return request.cookie(name)
        case .query(let name): return request.queryParameter(name)
        }
    }

    /// Records that a request was sent to `node`.
    public mutating func started(_ node: Int) { inFlight[node] += 1 }

    /// Records that a request to `node` finished.
    public mutating func finished(_ node: Int) { inFlight[node] -= 1 }

    /// Records how long `node` took to answer (or fail), for the latency-aware strategy.
    public mutating func recordLatency(_ node: Int, nanoseconds: Int64, failed: Bool, now: UInt64) {
        guard case .latency(var ewma) = picker else { return }
        picker = .pinned(0)  // release the payload so the mutation below does not copy it
        ewma.record(node, latencyNanoseconds: nanoseconds, failed: failed, now: now)
        picker = .latency(ewma)
    }


}
