/// Token bucket: `rate` tokens per second refill a bucket of `burst` tokens; each request takes
/// one. The bucket starts full, so the first `burst` requests pass at once, then `rate` per second.
public struct TokenBucket: Sendable {
    public let rate: Double
    public let burst: Int
    private var tokens: Double
    private var updated: UInt64

    public init(rate: Double, burst: Int, now: UInt64) {
        precondition(rate > 0 && burst >= 1, "rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = Double(burst)
        self.updated = now
    }

    public mutating func acquire(now: UInt64) -> LimitDecision {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return .allowed(remaining: Int(tokens), reset: resetTime)
        }
        return .rejected(retryAfter: .ceilingNanoseconds((1 - tokens) / rate * 1e9), reset: resetTime)
    }

    /// Whether the bucket is full at `now`: its state carries no information and can be dropped.
    public func isIdle(now: UInt64) -> Bool {
        var copy = self
        copy.refill(now: now)
        return copy.tokens >= Double(burst)
    }

    private var resetTime: Duration { .ceilingNanoseconds((Double(burst) - tokens) / rate * 1e9) }

    private mutating func refill(now: UInt64) {
        guard now > updated else { return }  // a clock that stands still or steps back adds nothing
        tokens = min(Double(burst), tokens + Double(now - updated) / 1e9 * rate)
        updated = now
    }
}
