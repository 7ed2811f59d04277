/// A progressive release on a route's split: the canary target's weight goes up a list of steps,
/// each held for at least `stepTime` and until `guardRails.minimumRequests` canary requests were
/// seen, while the guard rails hold. When they break, the canary goes back to 0 % at once and the
/// rollout pauses. After the last step (100 %) the canary is promoted.
public struct Rollout: Sendable, Equatable {
    /// The canary target's name (the split's other target is the baseline).
    public var canary: String
    /// Canary weights in percent, increasing, the last one 100.
    public var steps: [Int]
    public var stepTime: Duration
    /// A paused rollout holds its current weights.
    public var paused: Bool
    public var guardRails: GuardRails

    public init(canary: String, steps: [Int], stepTime: Duration, paused: Bool = false, guardRails: GuardRails = GuardRails()) {
        self.canary = canary
        self.steps = steps
        self.stepTime = stepTime
        self.paused = paused
        self.guardRails = guardRails
    }

    /// Limits on the canary's figures; each is off when `nil`.
    public struct GuardRails: Sendable, Equatable {
        /// Canary requests needed in a step before the guard rails are judged (and before advancing).
        public var minimumRequests: Int
        /// Highest canary 5xx ratio.
        public var maxErrorRatio: Double?
        /// Highest canary 5xx ratio above the baseline's.
        public var maxErrorRatioIncrease: Double?
        /// Highest canary p99.
        public var maxP99: Duration?
        /// Highest canary p99 as a multiple of the baseline's.
        public var maxP99Ratio: Double?

        public init(
            minimumRequests: Int = 100, maxErrorRatio: Double? = 0.05, maxErrorRatioIncrease: Double? = nil, maxP99: Duration? = nil,
            maxP99Ratio: Double? = nil
        ) {
            self.minimumRequests = minimumRequests
            self.maxErrorRatio = maxErrorRatio
            self.maxErrorRatioIncrease = maxErrorRatioIncrease
            self.maxP99 = maxP99
            self.maxP99Ratio = maxP99Ratio
        }
    }
}

/// What a rollout should do next, worked out from its settings, the canary's current weight, how
/// long that weight has been in place and the figures of both sides. Pure: the clock and the
/// figures are given.
public enum RolloutStep: Sendable, Equatable {
    /// Keep the weights (not enough time or requests yet, or paused).
    case hold(String)
    /// Raise the canary to this weight; the guard rails held.
    case advance(to: Int, String)
    /// The last step held: make the canary the route's target.
    case promote(String)
    /// A guard rail broke: canary to 0 % at once, and pause.
    case rollBack(String)

    /// The figures of one side over the current step.
    public struct Figures: Sendable, Equatable {
        public var requests: Int
        public var errorRatio: Double
        /// p99 in microseconds; `nil` without requests.
        public var p99Microseconds: Double?

        public init(requests: Int, errorRatio: Double, p99Microseconds: Double?) {
            self.requests = requests
            self.errorRatio = errorRatio
            self.p99Microseconds = p99Microseconds
        }

        var text: String {
            let p99 = p99Microseconds.map { String(format1: $0 / 1000) + " ms" } ?? "-"
            return "\(requests) requests, \(String(format1: errorRatio * 100)) % 5xx, p99 \(p99)"
        }
    }

    public static func decide(
        _ rollout: Rollout, canaryWeight: Int, heldFor: Duration, canary: Figures, baseline: Figures
    ) -> RolloutStep {
        let figures = "canary: \(canary.text); baseline: \(baseline.text)"
        if rollout.paused { return .hold("paused") }
        if canaryWeight > 0, canary.requests >= rollout.guardRails.minimumRequests, let broken = brokenRail(rollout.guardRails, canary, baseline) {
            return .rollBack("guard rail broken at \(canaryWeight) %: \(broken) (\(figures))")
        }
        guard heldFor >= rollout.stepTime else { return .hold("step time not over") }
        guard canary.requests >= rollout.guardRails.minimumRequests || canaryWeight == 0 else {
            return .hold("waiting for \(rollout.guardRails.minimumRequests) canary requests (\(canary.requests) so far)")
        }
        if canaryWeight >= 100 { return .promote("the canary held at 100 % (\(figures))") }
        let next = rollout.steps.first { $0 > canaryWeight } ?? 100
        return .advance(to: next, "guard rails held at \(canaryWeight) % (\(figures))")
    }

    private static func brokenRail(_ rails: Rollout.GuardRails, _ canary: Figures, _ baseline: Figures) -> String? {
        if let limit = rails.maxErrorRatio, canary.errorRatio > limit {
            return "5xx ratio \(String(format1: canary.errorRatio * 100)) % above \(String(format1: limit * 100)) %"
        }
        if let limit = rails.maxErrorRatioIncrease, canary.errorRatio - baseline.errorRatio > limit {
            return "5xx ratio \(String(format1: canary.errorRatio * 100)) % more than \(String(format1: limit * 100)) points above the baseline's"
        }
        if let limit = rails.maxP99, let p99 = canary.p99Microseconds, p99 > Double(limit.nanoseconds) / 1000 {
            return "p99 \(String(format1: p99 / 1000)) ms above \(String(format1: Double(limit.nanoseconds) / 1e6)) ms"
        }
        if let ratio = rails.maxP99Ratio, let p99 = canary.p99Microseconds, let base = baseline.p99Microseconds, base > 0, p99 > base * ratio {
            return "p99 \(String(format1: p99 / 1000)) ms more than \(ratio) times the baseline's \(String(format1: base / 1000)) ms"
        }
        return nil
    }
}

extension String {
    /// A number with one decimal, without Foundation.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        self = "\(sign)\(abs(tenths) / 10).\(abs(tenths) % 10)"
    }
}
