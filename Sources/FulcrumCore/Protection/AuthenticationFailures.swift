/// Failed authentications per client address, so that a client guessing tokens neither grows the
/// audit log by one entry per guess nor guesses without limit. Within a window (60 s by default)
/// a client's first failure is audited; the next ones are only counted; the ``limit``-th is
/// audited with the count of those before it, and the client is then refused with 429 until the
/// window ends. A client that stops between the two has its count told by its next entry.
/// A value: the caller keeps it (behind an actor) and passes the time, so tests need no clock.
public struct AuthenticationFailures: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Write an audit entry; `unrecorded` failures of this client were counted since its last one.
        case audit(unrecorded: Int)
        /// Counted only.
        case count
    }

    private struct Client: Sendable {
        var windowStart: UInt64
        var failures: Int
        var unrecorded: Int
    }

    /// Failures within one window after which the client is refused until the window ends.
    public let limit: Int
    /// The window, in nanoseconds.
    public let window: UInt64
    /// Clients tracked at most; beyond it, clients whose window ended are forgotten, and if none
    /// has, new clients are audited one by one (a bounded table, never an unbounded one).
    public let maximumClients: Int
    private var clients: [String: Client] = [:]

    public init(limit: Int = 10, window: Duration = .seconds(60), maximumClients: Int = 10_000) {
        self.limit = limit
        self.window = UInt64(window.nanoseconds)
        self.maximumClients = maximumClients
    }

    /// Seconds until `client` may try again (rounded up), or `nil` when it may now.
    public func retryAfter(client: String, now: UInt64) -> Int? {
        guard let state = clients[client], state.failures >= limit, now < state.windowStart + window else { return nil }
        return Int((state.windowStart + window - now + 999_999_999) / 1_000_000_000)
    }

    /// Records a failed authentication of `client` at `now` (monotonic nanoseconds).
    public mutating func recordFailure(client: String, now: UInt64) -> Verdict {
        if var state = clients[client], now < state.windowStart + window {
            state.failures += 1
            defer { clients[client] = state }
            if state.failures == limit {
                let unrecorded = state.unrecorded
                state.unrecorded = 0
                return .audit(unrecorded: unrecorded)
            }
            state.unrecorded += 1
            return .count
        }
        let unrecorded = clients[client]?.unrecorded ?? 0
        if clients[client] == nil, clients.count >= maximumClients {
            clients = clients.filter { now < $0.value.windowStart + window }
            if clients.count >= maximumClients { return .audit(unrecorded: 0) }
        }
        clients[client] = Client(windowStart: now, failures: 1, unrecorded: 0)
        return .audit(unrecorded: unrecorded)
    }
}
