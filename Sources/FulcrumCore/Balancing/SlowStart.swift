/// Slow start: a node that comes back (healthy again, or newly added) gets a share of its weight
/// that grows linearly from a tenth to all of it over the ramp time, instead of its full share at
/// once (a cold cache or JIT is not flooded).
public struct SlowStart: Sendable {
    /// The share a node gets at the start of its ramp.
    public static let initialShare = 0.1

    private let duration: Double
    /// When each node's ramp began (monotonic nanoseconds); `nil` when not ramping.
    private var startedAt: [UInt64?]

    public init(nodeCount: Int, duration: Duration) {
        self.duration = max(1, Double(duration.nanoseconds))
        self.startedAt = Array(repeating: nil, count: nodeCount)
    }

    /// Whether any node is ramping.
    public var isRamping: Bool { startedAt.contains { $0 != nil } }

    /// Starts (or restarts) the ramp of `node`.
    public mutating func begin(_ node: Int, now: UInt64) {
        startedAt[node] = now
    }

    /// The weights to use at `now`: ramping nodes get their share (at least 1 when their weight is
    /// not 0); ramps that are over end.
    public mutating func weights(base: [Int], now: UInt64) -> [Int] {
        var result = base
        for node in startedAt.indices {
            guard let start = startedAt[node] else { continue }
            let elapsed = now > start ? Double(now - start) : 0
            if elapsed >= duration {
                startedAt[node] = nil
                continue
            }
            let share = Self.initialShare + (1 - Self.initialShare) * elapsed / duration
            if base[node] > 0 { result[node] = max(1, Int((Double(base[node]) * share).rounded(.up))) }
        }
        return result
    }
}
