/// The limiter states of one rate limit on one event loop, one per key, with bounded memory:
/// at most `maxKeys` states; idle ones (back to their full allowance) are dropped by ``sweep(now:)``
/// and, when the table is full, before a new key is added (at most once per 100 ms). If no state is
/// idle, a new key is let through without a state (``Decision/untracked``) rather than evicting a
/// key that is being limited.
public struct KeyedLimiter: Sendable {
    private enum State: Sendable {
        case token(TokenBucket)
        case leaky(LeakyBucket)
        case sliding(SlidingWindow)

        func isIdle(now: UInt64) -> Bool {
            switch self {
            case .token(let bucket): return bucket.isIdle(now: now)
            case .leaky(let bucket): return bucket.isIdle(now: now)
            case .sliding(let window): return window.isIdle(now: now)
            }
        }
    }

    /// A decision, or the admission of a key the full table could not track.
    public enum Decision: Sendable, Equatable {
        case limited(LimitDecision)
        case untracked
    }

    public let limit: RateLimit
    private var states: [String: State] = [:]
    /// When the table was last swept because it was full. Sweeping is O(keys), so a flood of new
    /// keys against a full table of active ones triggers at most one sweep per 100 ms.
    private var lastFullSweep: UInt64?

    public init(limit: RateLimit) {
        self.limit = limit
    }

    /// Keys currently tracked.
    public var trackedKeys: Int { states.count }

    public mutating func acquire(key: String, now: UInt64) -> Decision {
        if let existing = states[key] {
            var state = existing
            let decision = Self.acquire(&state, now: now)
            states[key] = state
            return .limited(decision)
        }
        if states.count >= limit.maxKeys {
            guard lastFullSweep.map({ now &- $0 >= 100_000_000 }) ?? true else { return .untracked }
            lastFullSweep = now
            sweep(now: now)
            guard states.count < limit.maxKeys else { return .untracked }
        }
        var state = makeState(now: now)
        let decision = Self.acquire(&state, now: now)
        states[key] = state
        return .limited(decision)
    }

    /// Drops the state of `key`: its next request starts afresh.
    public mutating func forget(key: String) {
        states[key] = nil
    }

    /// Drops the states that are idle at `now`.
    public mutating func sweep(now: UInt64) {
        states = states.filter { !$0.value.isIdle(now: now) }
    }

    private func makeState(now: UInt64) -> State {
        switch limit.algorithm {
        case .tokenBucket(let rate, let burst): return .token(TokenBucket(rate: rate, burst: burst, now: now))
        case .leakyBucket(let rate, let maxDelay): return .leaky(LeakyBucket(rate: rate, maxDelay: maxDelay, now: now))
        case .slidingWindow(let count, let window): return .sliding(SlidingWindow(limit: count, window: window, now: now))
        }
    }

    private static func acquire(_ state: inout State, now: UInt64) -> LimitDecision {
        switch state {
        case .token(var bucket):
            let decision = bucket.acquire(now: now)
            state = .token(bucket)
            return decision
        case .leaky(var bucket):
            let decision = bucket.acquire(now: now)
            state = .leaky(bucket)
            return decision
        case .sliding(var window):
            let decision = window.acquire(now: now)
            state = .sliding(window)
            return decision
        }
    }
}
