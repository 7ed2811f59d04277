/// Leaky bucket as a queue that drains at `rate` per second: a request is scheduled one interval
/// after the previous one; if that is no more than `maxDelay` away it is admitted with that delay
/// (smoothing bursts), otherwise refused. This is the generic cell rate algorithm: O(1) state, no
/// timer per request.
public struct LeakyBucket: Sendable {
    public let rate: Double
    public let maxDelay: Duration
    private let interval: UInt64
    /// When the next request may leave without delay.
    private var nextFree: UInt64

    public init(rate: Double, maxDelay: Duration, now: UInt64) {
        precondition(rate > 0, "rate > 0")
        self.rate = rate
        self.maxDelay = maxDelay
        self.interval = UInt64((1e9 / rate).rounded())
        self.nextFree = now
    }

    public mutating func acquire(now: UInt64) -> LimitDecision {
        let start = max(now, nextFree)
        let delay = start - now
        let limit = UInt64(maxDelay.nanoseconds)
        guard delay <= limit else {
            return .rejected(retryAfter: .nanoseconds(Int64(delay - limit)), reset: .nanoseconds(Int64(nextFree - now)))
        }
        nextFree = start + interval
        let remaining = Int((limit - delay) / interval)
        let reset = Duration.nanoseconds(Int64(nextFree - now))
        return delay == 0 ? .allowed(remaining: remaining, reset: reset) : .delayed(.nanoseconds(Int64(delay)), remaining: remaining, reset: reset)
    }

    /// Whether the queue is empty at `now`.
    public func isIdle(now: UInt64) -> Bool { nextFree <= now }
}
