/// Latency-aware choice (Finagle's and Linkerd's "peak EWMA"): each node's response time is tracked
/// as a moving average that jumps up at once to a slower response and comes down gradually with
/// faster ones (and towards zero while the node is idle, so a node once slow is tried again).
/// A node's cost is that estimate times its requests in flight plus one, divided by its weight;
/// two nodes are drawn at random (by weight) and the cheaper one wins.
///
/// The decay is hyperbolic, weight `τ / (τ + Δt)` for the old estimate after `Δt`, which needs no
/// exponential and behaves alike: after `τ` the old estimate counts half.
public struct PeakEWMA: Sendable {
    /// Settings of the strategy.
    public struct Settings: Sendable, Equatable {
        /// τ: how fast an estimate forgets.
        public var decay: Duration
        /// The latency a failure (connection error, timeout, 5xx) counts as, so that a node
        /// answering errors fast does not look fast.
        public var failurePenalty: Duration

        public init(decay: Duration = .seconds(10), failurePenalty: Duration = .seconds(1)) {
            self.decay = decay
            self.failurePenalty = failurePenalty
        }
    }

    /// The estimate of a node without a response yet: 1 ms, so that its requests in flight count.
    public static let initialEstimateNanoseconds = 1_000_000.0

    private var weights: [Int]
    private var sampler: WeightedRandom
    private let decayNanoseconds: Double
    private let penaltyNanoseconds: Double
    private var estimates: [Double]
    private var stamps: [UInt64]

    public init(weights: [Int], settings: Settings = Settings()) {
        self.weights = weights
        self.sampler = WeightedRandom(weights: weights)
        self.decayNanoseconds = max(1, Double(settings.decay.nanoseconds))
        self.penaltyNanoseconds = Double(settings.failurePenalty.nanoseconds)
        self.estimates = Array(repeating: Self.initialEstimateNanoseconds, count: weights.count)
        self.stamps = Array(repeating: 0, count: weights.count)
    }

    /// The estimate of `node` at `now`, decayed towards zero since its last response.
    public func estimate(_ node: Int, now: UInt64) -> Double {
        estimates[node] * keep(node, now: now)
    }

    /// The weight the estimate keeps after the time since the node's last response (all of it
    /// before the first response).
    private func keep(_ node: Int, now: UInt64) -> Double {
        guard stamps[node] != 0 else { return 1 }
        let elapsed = now > stamps[node] ? Double(now - stamps[node]) : 0
        return decayNanoseconds / (decayNanoseconds + elapsed)
    }

    /// Records a response (or a failure, which counts at least as the failure penalty).
    public mutating func record(_ node: Int, latencyNanoseconds: Int64, failed: Bool, now: UInt64) {
        let sample = failed ? max(Double(latencyNanoseconds), penaltyNanoseconds) : Double(latencyNanoseconds)
        let kept = stamps[node] == 0 ? 0 : keep(node, now: now)  // the first response replaces the initial guess
        let decayed = estimates[node] * kept
        estimates[node] = sample > decayed ? sample : decayed + sample * (1 - kept)
        stamps[node] = max(now, 1)
    }

    /// Changes the weights (slow start), keeping the estimates.
    public mutating func reweight(_ weights: [Int]) {
        self.weights = weights
        self.sampler = WeightedRandom(weights: weights)
    }

    /// The cheaper of two nodes drawn by weight: estimate × (in flight + 1) / weight.
    public func pick(inFlight: [Int], now: UInt64, using random: inout FastRandom, isEligible: (Int) -> Bool) -> Int? {
        guard let first = sampler.pick(using: &random, isEligible: isEligible) else { return nil }
        guard let second = sampler.pick(using: &random, isEligible: { $0 != first && isEligible($0) }) else {
            return first
        }
        return cost(second, inFlight: inFlight, now: now) < cost(first, inFlight: inFlight, now: now) ? second : first
    }

    private func cost(_ node: Int, inFlight: [Int], now: UInt64) -> Double {
        estimate(node, now: now) * Double(inFlight[node] + 1) / Double(max(weights[node], 1))
    }
}
