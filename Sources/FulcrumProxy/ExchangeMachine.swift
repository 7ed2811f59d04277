import NIOCore
import NIOHTTP1

/// How far one exchange has got and what happens next, as a value: the client transport tells it
/// what happened (a body part or the end of the request arrived, a node connection was attached
/// or failed, the node's response began or ended, a timeout ran out) and carries out the action
/// each transition returns (forward or buffer a body part, relay a head, try another node, answer
/// or close the client). It sees no bytes, sockets or clock of its own: times are given, so
/// every transition and the response timeout are tested without I/O or sleeping
/// (`ExchangeMachineTests`), and an HTTP/2 stream can drive it as an HTTP/1.1 connection does.
struct ExchangeMachine {
    /// What the machine needs to know of the request.
    struct Request {
        /// Whether the client keeps its connection open after this exchange.
        var keepAlive: Bool
        /// Whether interim responses (100, 103) may be passed on (not to HTTP/1.0 clients, RFC 9110 §15.2).
        var takesInterimResponses: Bool
        /// Whether the method may be sent twice without changing its effect (RFC 9110 §9.2.2).
        var isIdempotent: Bool
        /// Whether the client asked for a protocol switch (`Upgrade`).
        var asksForUpgrade: Bool
        /// Whether the route pins the request to one node (it may not move to another).
        var isPinned: Bool
    }

    enum Phase: Equatable {
        /// Waiting for a connection to the node (or for a leaky bucket's turn); body parts are buffered.
        case waitingForNode
        /// Attached to a connection to the node; the response has not begun.
        case awaitingResponse
        /// The response is being relayed to the client.
        case responding
        /// The exchange is over; nothing more happens to it.
        case finished
    }

    /// How an exchange ends when it cannot end with the node's whole response.
    enum Ending: Equatable {
        /// Fulcrum answers with its own response, and closes the client's connection after it when `close`.
        case answer(HTTPResponseStatus, close: Bool)
        /// Part of the response is with the client: closing its connection is the only signal
        /// left; `afterFlushing` what was already queued for it.
        case closeClient(afterFlushing: Bool)
    }

    /// What to do with a part of the request body.
    enum BodyAction: Equatable {
        /// Keep it until a node's connection is attached (it is sent then, and kept for a retry).
        case buffer
        /// Send it to the node now.
        case forward
    }

    /// What to do with a response head from the node.
    enum ResponseHeadAction: Equatable {
        /// An interim response (100, 103): pass it on, and wait for the final one.
        case relayInterim
        /// An interim response the client cannot take: drop it.
        case dropInterim
        /// A switch of protocols the request did not ask for: the node's connection cannot be
        /// trusted (see ``nodeFailed(nothingSent:draining:)``).
        case refuseSwitch
        /// Relay the final head; the client's connection closes after the response when `closeClient`.
        case relay(closeClient: Bool)
        /// Relay the 101 and relay bytes as they are from now on, both ways.
        case relayAndTunnel(closeClient: Bool)
    }

    /// What happens after the node's response ended.
    struct ResponseEnd: Equatable {
        /// Whether the node's connection may go back to its pool.
        var nodeConnectionReusable: Bool
        var client: AfterResponse
    }

    enum AfterResponse: Equatable {
        /// Ready for the next request.
        case idle
        /// The client's connection closes once the response is flushed.
        case close
        /// The response went out before the request body ended: the rest of it is read and
        /// dropped, then the connection closes (a lingering close).
        case lingerThenClose
    }

    /// What to do after a failure of the node before its response began.
    enum FailureAction: Equatable {
        /// Ask the policy for another node (or, when `orSameNode`, the same one again: a pooled
        /// connection may just have been stale), then call ``retrying()``, or ``cannotRetry(_:draining:)``
        /// when there is none.
        case tryAnotherNode(orSameNode: Bool)
        case end(Ending)
    }

    let request: Request
    /// How long the node has to begin its response once the request is with it.
    let responseTimeout: TimeAmount
    private(set) var phase = Phase.waitingForNode
    /// Connections tried (a retry makes 2).
    private(set) var attempts = 1
    private(set) var requestEnded = false
    /// Whether body bytes went to a node as they arrived (they are not kept, so no retry).
    private(set) var bodyStreamed = false
    /// Whether the attached connection came from the idle pool (the node may have closed it).
    private(set) var usesReusedConnection = false
    /// The final response's status, once it began.
    private(set) var status: UInt = 0
    /// Whether the node keeps its connection open after the response.
    private(set) var nodeKeepsAlive = true
    /// Whether the client's connection closes after the response (the client asked, the node's
    /// response ends with its connection, a drain, or the response began before the request ended).
    private(set) var closesClient = false
    /// When the node must have begun its response; set once the whole request is with it.
    private(set) var responseDeadline: NIODeadline?
    /// Request body bytes received from the client.
    private(set) var requestBytes = 0
    /// Response body bytes relayed to the client.
    private(set) var responseBytes = 0
    /// The body bytes both ways, as the sweep last saw them (see ``stall(clientHoldsUp:clientStall:nodeStall:now:)``).
    private var progress = ProgressWatch()

    init(request: Request, responseTimeout: TimeAmount) {
        self.request = request
        self.responseTimeout = responseTimeout
    }

    var responseStarted: Bool { phase == .responding || (phase == .finished && status != 0) }

    /// The status the exchange is recorded with when the client connection ends in its middle.
    var statusWhenAbandoned: UInt { status != 0 ? status : 499 }

    // MARK: the request

    mutating func requestBodyReceived(_ count: Int) -> BodyAction {
        requestBytes &+= count
        switch phase {
        case .awaitingResponse, .responding:
            bodyStreamed = true
            return .forward
        case .waitingForNode, .finished:
            return .buffer
        }
    }

    /// The request ended; returns true when the node is to be told so now (it is attached), and
    /// the response timeout runs from `now` (read only then).
    mutating func requestEndReceived(now: @autoclosure () -> NIODeadline) -> Bool {
        requestEnded = true
        guard phase == .awaitingResponse || phase == .responding else { return false }
        armResponseTimeout(now: now())
        return true
    }

    // MARK: the node

    /// A connection to the node is attached (`reused` from the idle pool); returns true when the
    /// whole request was already received, so the node is told it ended now (and `now`, read only
    /// then, starts the response timeout).
    mutating func attached(reused: Bool, now: @autoclosure () -> NIODeadline) -> Bool {
        phase = .awaitingResponse
        usesReusedConnection = reused
        guard requestEnded else { return false }
        armResponseTimeout(now: now())
        return true
    }

    private mutating func armResponseTimeout(now: NIODeadline) {
        if phase == .awaitingResponse, responseDeadline == nil { responseDeadline = now + responseTimeout }
    }

    mutating func responseHeadReceived(
        status: UInt, isInterim: Bool, nodeKeepsAlive: Bool, endsWithConnection: Bool, draining: Bool
    ) -> ResponseHeadAction {
        if isInterim, status != 101 { return request.takesInterimResponses ? .relayInterim : .dropInterim }
        if status == 101, !request.asksForUpgrade { return .refuseSwitch }
        phase = .responding
        responseDeadline = nil
        self.status = status
        self.nodeKeepsAlive = nodeKeepsAlive
        // a response that begins before the request body ended may end before it: the connection
        // then closes after the rest of the body is read, and the client is told so
        closesClient = !request.keepAlive || draining || endsWithConnection || !requestEnded
        guard status == 101 else { return .relay(closeClient: closesClient) }
        phase = .finished
        return .relayAndTunnel(closeClient: closesClient)
    }

    mutating func responseBodyReceived(_ count: Int) {
        responseBytes &+= count
    }

    /// The whole response was received.
    mutating func responseEndReceived(draining: Bool) -> ResponseEnd {
        phase = .finished
        let client: AfterResponse = !requestEnded ? .lingerThenClose : (closesClient || draining ? .close : .idle)
        return ResponseEnd(nodeConnectionReusable: nodeKeepsAlive, client: client)
    }

    /// The node's connection failed or closed (or could not be opened: `nothingSent`). Before the
    /// response began, the request goes to another node when that is safe: no byte reached the
    /// failed node (whatever the method, as nginx does), or an idempotent request whose body was
    /// not streamed; once, and a pinned request only when the failed connection was a pooled one
    /// (a fresh connection to the same node).
    mutating func nodeFailed(nothingSent: Bool, draining: Bool) -> FailureAction {
        if phase == .responding {
            phase = .finished
            return .end(.closeClient(afterFlushing: false))
        }
        responseDeadline = nil
        let mayMove = !request.isPinned || usesReusedConnection
        let mayRepeat = nothingSent || (request.isIdempotent && !bodyStreamed)
        if mayRepeat, attempts < 2, mayMove { return .tryAnotherNode(orSameNode: usesReusedConnection) }
        return .end(cannotRetry(.badGateway, draining: draining))
    }

    /// The request goes to another node (after ``FailureAction/tryAnotherNode(orSameNode:)``).
    mutating func retrying() {
        attempts += 1
        phase = .waitingForNode
    }

    /// Answers with `status`; the client's connection closes after it when the client asked,
    /// when its request body is still arriving (its reads were paused), or during a drain.
    mutating func cannotRetry(_ status: HTTPResponseStatus, draining: Bool) -> Ending {
        phase = .finished
        return .answer(status, close: !request.keepAlive || !requestEnded || draining)
    }

    // MARK: timeouts

    /// Whether the response timeout ran out at `now` (then the exchange ends with a 504, see
    /// ``cutOffNode()``).
    func responseTimedOut(now: NIODeadline) -> Bool {
        guard phase == .awaitingResponse, let responseDeadline else { return false }
        return responseDeadline <= now
    }

    /// The node did not begin its response in time, or stopped taking the request body: 504, and
    /// both connections close (the client's may still be sending a body that has nowhere to go).
    mutating func cutOffNode() -> Ending {
        phase = .finished
        responseDeadline = nil
        return .answer(.gatewayTimeout, close: true)
    }

    /// The side that held an attached exchange up.
    enum Stall: Equatable {
        /// For `client_stall`: see ``clientStalled()``.
        case client
        /// For `upstream_stall`: see ``nodeStalled()``.
        case node
    }

    /// The loop's sweep looks at the exchange once a second: which side, if any, has held it up
    /// for its stall timeout at `now`, counted from the last look at which body bytes had moved.
    /// `clientHoldsUp` when the client takes none of the response (the node's reads are paused
    /// for it) or sends its request body while nothing holds it back; otherwise the node is the
    /// one holding it up. Waiting for the response head is the response timeout's, and the head
    /// arriving starts the count again.
    mutating func stall(clientHoldsUp: Bool, clientStall: TimeAmount, nodeStall: TimeAmount, now: NIODeadline) -> Stall? {
        guard phase == .responding || (phase == .awaitingResponse && !requestEnded) else {
            progress.reset()
            return nil
        }
        let still = progress.stillFor(requestBytes &+ responseBytes, now: now)
        if clientHoldsUp { return still >= clientStall ? .client : nil }
        return still >= nodeStall ? .node : nil
    }

    /// The node stopped sending its response body for `upstream_stall`.
    mutating func nodeStalled() -> Ending {
        guard phase == .responding else { return cutOffNode() }
        phase = .finished
        return .closeClient(afterFlushing: true)
    }

    /// The client held the exchange up for `client_stall`: 408 if no response began; otherwise
    /// it takes nothing, so what is queued for it cannot be flushed.
    mutating func clientStalled() -> Ending {
        let responding = phase == .responding
        phase = .finished
        responseDeadline = nil
        return responding ? .closeClient(afterFlushing: false) : .answer(.requestTimeout, close: true)
    }

    /// The client's connection ended in the middle of the exchange, or its request turned out
    /// malformed: nothing more happens.
    mutating func abandoned() {
        phase = .finished
        responseDeadline = nil
    }
}
