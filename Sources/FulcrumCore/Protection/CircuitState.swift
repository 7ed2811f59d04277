/// The states of a circuit breaker.
public enum CircuitState: Sendable, Equatable {
    /// Requests flow; outcomes are counted in a rolling window.
    case closed
    /// Requests are refused until `until` (monotonic nanoseconds).
    case open(until: UInt64)
    /// After the cool-down: `admitted` trial requests were let through so far, `succeeded` of them
    /// succeeded.
    case halfOpen(admitted: Int, succeeded: Int)

    /// `closed`, `open` or `half-open`, for logs and the state API.
    public var name: String {
        switch self {
        case .closed: return "closed"
        case .open: return "open"
        case .halfOpen: return "half-open"
        }
    }
}
