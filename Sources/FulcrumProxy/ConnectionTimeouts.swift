import FulcrumCore
import NIOCore

/// A client connection's timeouts as a value: when each timed period began, and, asked with the
/// connection's phase and the time, which timeout has run out. An exchange's own timeouts (the
/// response timeout, stalls) are its machine's (``ExchangeMachine``). The handler tells it what happens
/// (a head begins, a request starts, the connection becomes idle, lingers, closes after a flush)
/// and carries out its verdicts; the loop's sweep asks once a second. No clock of its own, so
/// every timeout is tested under a time the tests set (`ConnectionTimeoutsTests`).
struct ConnectionTimeouts {
    /// The limits, from ``Timeouts``, converted once per sweep.
    struct Limits {
        var clientIdle: TimeAmount
        var clientHead: TimeAmount
        var clientStall: TimeAmount
        var upstreamStall: TimeAmount
        var tunnelIdle: TimeAmount
        /// The longest a connection reads and drops a request body after its response (nginx's
        /// `lingering_time`).
        var lingering: TimeAmount = .seconds(30)

        init(_ timeouts: Timeouts) {
            clientIdle = TimeAmount(timeouts.clientIdle)
            clientHead = TimeAmount(timeouts.clientHead)
            clientStall = TimeAmount(timeouts.clientStall)
            upstreamStall = TimeAmount(timeouts.upstreamStall)
            tunnelIdle = TimeAmount(timeouts.tunnelIdle)
        }
    }

    /// What the connection is doing, as far as its timeouts are concerned.
    enum Phase {
        /// Between requests, or before the first: idle, or receiving a head.
        case waitingForRequest
        /// An exchange is in progress: its machine times it.
        case exchange
        /// Fulcrum answered; the rest of the request body is read and dropped (`dropped` so far).
        case droppingBody(dropped: Int)
        /// Fulcrum sends a file (`sent` bytes so far), each piece once the client took the last.
        case sendingFile(sent: Int)
        /// The request body is read to route the request (`read` bytes so far).
        case readingBody(read: Int)
        /// Bytes relayed as they are after a protocol switch (`relayed` both ways so far).
        case tunneling(relayed: Int)
        /// Closing once the last bytes are flushed.
        case closing
    }

    enum Verdict: Equatable {
        case none
        /// Idle for `client_idle` between requests: close.
        case idleTooLong
        /// A head not whole within `client_head`: 408 and close.
        case headTooSlow
        /// A dropped body that stopped for `client_stall` or outlasted the lingering time, or a
        /// tunnel silent for `tunnel_idle`: close.
        case silent
        /// Closing, the last bytes waited `client_stall` for a client that reads nothing: close
        /// without them.
        case flushStalled
    }

    private var idleSince: NIODeadline
    /// When the head being received began; `nil` between heads.
    private(set) var headStartedAt: NIODeadline?
    /// Whether no request has started on this connection yet.
    private(set) var awaitsFirstHead = true
    private var lingeringSince: NIODeadline?
    private var flushingSince: NIODeadline?
    /// The bytes of a phase watched for silence (a dropped body, a tunnel).
    private var silence = ProgressWatch()

    /// A connection accepted at `now`: its first head is timed from the accept.
    init(acceptedAt now: NIODeadline) {
        idleSince = now
        headStartedAt = now
    }

    /// Part of a head arrived while none was being timed: `client_head` runs from now.
    mutating func headBegan(at now: NIODeadline) {
        if headStartedAt == nil { headStartedAt = now }
    }

    /// A whole head arrived: a request starts.
    mutating func requestStarted() {
        headStartedAt = nil
        awaitsFirstHead = false
    }

    /// Between requests again.
    mutating func becameIdle(at now: NIODeadline) {
        idleSince = now
        silence.reset()
    }

    /// The response went out before the request body ended; its rest is dropped from now.
    mutating func lingers(since now: NIODeadline) {
        lingeringSince = now
    }

    /// The connection closes once its last bytes are flushed.
    mutating func closesAfterFlush(at now: NIODeadline) {
        if flushingSince == nil { flushingSince = now }
    }

    /// Whether the connection, at the connection cap, should make way: still in its first head,
    /// begun before `openedBefore`.
    func isStillInFirstHead(openedBefore: NIODeadline) -> Bool {
        guard awaitsFirstHead, let headStartedAt else { return false }
        return headStartedAt < openedBefore
    }

    /// Which timeout, if any, has run out at `now`.
    mutating func verdict(_ phase: Phase, limits: Limits, now: NIODeadline) -> Verdict {
        switch phase {
        case .waitingForRequest:
            silence.reset()
            if let headStartedAt { return now - headStartedAt > limits.clientHead ? .headTooSlow : .none }
            return now - idleSince > limits.clientIdle ? .idleTooLong : .none
        case .exchange:
            silence.reset()
            return .none
        case .droppingBody(let dropped):
            if let lingeringSince, now - lingeringSince >= limits.lingering { return .silent }
            return silence.stillFor(dropped, now: now) >= limits.clientStall ? .silent : .none
        case .sendingFile(let count), .readingBody(let count):
            return silence.stillFor(count, now: now) >= limits.clientStall ? .silent : .none
        case .tunneling(let relayed):
            return silence.stillFor(relayed, now: now) >= limits.tunnelIdle ? .silent : .none
        case .closing:
            guard let flushingSince else { return .none }
            return now - flushingSince > limits.clientStall ? .flushStalled : .none
        }
    }
}
