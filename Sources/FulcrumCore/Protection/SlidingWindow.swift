/// Sliding window counter: at most `limit` requests per `window`, estimated from the current fixed
/// window's count plus the previous window's count weighted by how much of it still overlaps the
/// sliding window. Two counters of state; exact when traffic is even within a window.
public struct SlidingWindow: Sendable {
    public let limit: Int
    public let window: Duration
    private let length: UInt64
    private var currentStart: UInt64
    private var current = 0
    private var previous = 0

    public init(limit: Int, window: Duration, now: UInt64) {
        precondition(limit >= 1 && window > .zero, "limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self.length = UInt64(window.nanoseconds)
        self.currentStart = now - now % UInt64(window.nanoseconds)
    }

    public mutating func acquire(now clock: UInt64) -> LimitDecision {
        let now = max(clock, currentStart)  // a clock that steps back counts as the window's start
        advance(now: now)
        let elapsed = Double(now - currentStart) / Double(length)
        let estimate = Double(previous) * (1 - elapsed) + Double(current)
        let reset = Duration.nanoseconds(Int64(currentStart + length - now))
        guard estimate + 1 <= Double(limit) else {
            // the estimate falls by `previous` per window length as the previous window slides out
            let excess = estimate + 1 - Double(limit)
            let wait = previous > 0 ? excess / Double(previous) * Double(length) : Double(currentStart + length - now)
            return .rejected(retryAfter: .ceilingNanoseconds(min(wait, Double(currentStart + length - now) + Double(length))), reset: reset)
        }
        current += 1
        return .allowed(remaining: max(0, Int((Double(limit) - estimate - 1).rounded(.down))), reset: reset)
    }

    /// Whether both windows are over at `now`.
    public func isIdle(now: UInt64) -> Bool { now >= currentStart + 2 * length }

    private mutating func advance(now: UInt64) {
        guard now >= currentStart + length else { return }
        let windows = (now - currentStart) / length
        previous = windows == 1 ? current : 0
        current = 0
        currentStart += windows * length
    }
}
