/// A circuit breaker over a rolling window of one-second buckets.
///
/// closed → open when, within the window, at least `minimumRequests` finished and either the share
/// of failures or the share of slow responses reached its limit; open → half-open when the
/// cool-down has passed (on the next admission); half-open lets `trialRequests` through, closes when
/// they all succeed and reopens at the first failure. Owned by one event loop, driven by an injected
/// monotonic clock (nanoseconds).
public struct CircuitBreaker: Sendable {
    public struct Policy: Sendable, Equatable {
        /// Length of the rolling window (whole seconds, at least 1).
        public var window: Duration
        /// Fewest finished requests in the window before the ratios are judged.
        public var minimumRequests: Int
        /// Failure share (0...1) that opens the circuit.
        public var failureRatio: Double
        /// Responses slower than this count as slow.
        public var slowThreshold: Duration?
        /// Slow share (0...1) that opens the circuit.
        public var slowRatio: Double
        /// How long the circuit stays open.
        public var coolDown: Duration
        /// Trial requests let through while half-open.
        public var trialRequests: Int

        public init(
            window: Duration = .seconds(10), minimumRequests: Int = 20, failureRatio: Double = 0.5,
            slowThreshold: Duration? = nil, slowRatio: Double = 0.5, coolDown: Duration = .seconds(30), trialRequests: Int = 3
        ) {
            self.window = window
            self.minimumRequests = minimumRequests
            self.failureRatio = failureRatio
            self.slowThreshold = slowThreshold
            self.slowRatio = slowRatio
            self.coolDown = coolDown
            self.trialRequests = trialRequests
        }
    }

    /// Whether a request may proceed.
    public enum Admission: Sendable, Equatable {
        case allowed
        /// Allowed as one of the half-open trials; its outcome decides the state.
        case trial
        /// Refused; the circuit is expected to let requests through again after `retryAfter`.
        case rejected(retryAfter: Duration)
    }

    /// How an admitted request ended.
    public enum Outcome: Sendable, Equatable {
        case success(latency: Duration)
        /// A connection error, a timeout or a status the policy counts as failure.
        case failure
    }

    public let policy: Policy
    public private(set) var state: CircuitState = .closed
    private var window: RollingCounts

    public init(policy: Policy) {
        self.policy = policy
        self.window = RollingCounts(seconds: max(1, Int(policy.window.components.seconds)))
    }

    /// Decides whether a request may proceed at `now`.
    public mutating func admit(now: UInt64) -> Admission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(retryAfter: .nanoseconds(Int64(until - now))) }
            state = .halfOpen(admitted: 1, succeeded: 0)
            return .trial
        case .halfOpen(let admitted, let succeeded):
            guard admitted < policy.trialRequests else {
                return .rejected(retryAfter: .seconds(1))
            }
            state = .halfOpen(admitted: admitted + 1, succeeded: succeeded)
            return .trial
        }
    }

    /// Records the outcome of a request admitted at `admission`; returns the new state when it changed.
    @discardableResult
    public mutating func record(_ outcome: Outcome, admission: Admission, now: UInt64) -> CircuitState? {
        let failed = outcome == .failure
        switch (state, admission) {
        case (.halfOpen(let admitted, let succeeded), .trial):
            if failed {
                return open(now: now)
            }
            if succeeded + 1 >= policy.trialRequests {
                state = .closed
                window.reset()
                return state
            }
            state = .halfOpen(admitted: admitted, succeeded: succeeded + 1)
            return nil
        case (.closed, .allowed):
            var slow = false
            if case .success(let latency) = outcome, let threshold = policy.slowThreshold { slow = latency > threshold }
            window.add(failed: failed, slow: slow, now: now)
            let totals = window.totals(now: now)
            guard totals.requests >= policy.minimumRequests else { return nil }
            let requests = Double(totals.requests)
            if Double(totals.failures) / requests >= policy.failureRatio
                || (policy.slowThreshold != nil && Double(totals.slow) / requests >= policy.slowRatio)
            {
                return open(now: now)
            }
            return nil
        default:
            return nil  // an outcome from before the last change of state: it says nothing about now
        }
    }

    /// Gives back an admission whose outcome will never be known (the client left, or a later
    /// check refused the request), so that a half-open circuit does not wait for it forever.
    public mutating func cancel(_ admission: Admission) {
        if case .trial = admission, case .halfOpen(let admitted, let succeeded) = state, admitted > 0 {
            state = .halfOpen(admitted: admitted - 1, succeeded: succeeded)
        }
    }

    private mutating func open(now: UInt64) -> CircuitState {
        state = .open(until: now + UInt64(policy.coolDown.nanoseconds))
        window.reset()
        return state
    }
}

/// Request, failure and slow counts in one-second buckets over a rolling window.
struct RollingCounts: Sendable {
    private struct Bucket: Sendable {
        var second: UInt64 = .max
        var requests = 0
        var failures = 0
        var slow = 0
    }

    private var buckets: [Bucket]

    init(seconds: Int) {
        buckets = Array(repeating: Bucket(), count: seconds)
    }

    mutating func add(failed: Bool, slow: Bool, now: UInt64) {
        let second = now / 1_000_000_000
        let index = Int(second % UInt64(buckets.count))
        if buckets[index].second != second { buckets[index] = Bucket(second: second) }
        buckets[index].requests += 1
        if failed { buckets[index].failures += 1 }
        if slow { buckets[index].slow += 1 }
    }

    func totals(now: UInt64) -> (requests: Int, failures: Int, slow: Int) {
        let second = now / 1_000_000_000
        var totals = (requests: 0, failures: 0, slow: 0)
        for bucket in buckets where bucket.second != .max && bucket.second <= second && second - bucket.second < UInt64(buckets.count) {
            totals.requests += bucket.requests
            totals.failures += bucket.failures
            totals.slow += bucket.slow
        }
        return totals
    }

    mutating func reset() {
        buckets = Array(repeating: Bucket(), count: buckets.count)
    }
}
