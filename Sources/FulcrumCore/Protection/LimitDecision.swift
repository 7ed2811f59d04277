/// A rate limiter's answer for one request, with what the `RateLimit-*` and `Retry-After`
/// headers need.
public enum LimitDecision: Sendable, Equatable {
    /// Admitted now; `remaining` more would be admitted right away; the limiter is back to its full
    /// allowance after `reset`.
    case allowed(remaining: Int, reset: Duration)
    /// Admitted, but to keep the rate it should be forwarded only after `delay` (leaky bucket).
    case delayed(Duration, remaining: Int, reset: Duration)
    /// Refused; a request would be admitted again after `retryAfter`.
    case rejected(retryAfter: Duration, reset: Duration)

    public var isAdmitted: Bool {
        if case .rejected = self { return false }
        return true
    }
}

extension Duration {
    static func ceilingNanoseconds(_ value: Double) -> Duration {
        .nanoseconds(Int64(value.rounded(.up)))
    }
}
