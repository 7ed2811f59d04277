import NIOCore
import NIOHTTP1
import Testing
@testable import FulcrumProxy

/// Every transition of the exchange machine, under times the tests give: what a connection does
/// with a request's body, a node's response and its failures is decided here, and the sockets
/// only carry it out (the integration suites keep one end-to-end test of each).
@Suite struct ExchangeMachineTests {
    static func machine(
        keepAlive: Bool = true, http10: Bool = false, idempotent: Bool = true, upgrade: Bool = false, pinned: Bool = false,
        timeout: TimeAmount = .seconds(5)
    ) -> ExchangeMachine {
        ExchangeMachine(
            request: ExchangeMachine.Request(
                keepAlive: keepAlive, takesInterimResponses: !http10, isIdempotent: idempotent, asksForUpgrade: upgrade, isPinned: pinned),
            responseTimeout: timeout)
    }

    static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds) * 1_000_000_000) }

    /// Relays the head of a final response with `status`.
    static func respond(_ machine: inout ExchangeMachine, _ status: UInt = 200, nodeKeepsAlive: Bool = true, untilClose: Bool = false, draining: Bool = false) -> ExchangeMachine.ResponseHeadAction {
        machine.responseHeadReceived(status: status, isInterim: false, nodeKeepsAlive: nodeKeepsAlive, endsWithConnection: untilClose, draining: draining)
    }

    @Test func bodyPartsAreBufferedUntilANodeIsAttachedThenForwarded() {
        var machine = Self.machine()
        let bodyAction = machine.requestBodyReceived(10)
        #expect(bodyAction == .buffer)
        let endsAtNode = machine.attached(reused: false, now: Self.at(1))
        #expect(!endsAtNode, "the request has not ended: nothing to tell the node")
        let bodyAction2 = machine.requestBodyReceived(5)
        #expect(bodyAction2 == .forward)
        #expect(machine.requestBytes == 15 && machine.bodyStreamed)
    }

    @Test func theResponseTimeoutRunsFromTheEndOfTheRequestAtTheNode() {
        var machine = Self.machine(timeout: .seconds(5))
        let endsAtNode = machine.requestEndReceived(now: Self.at(1))
        #expect(!endsAtNode, "no node yet: the timeout does not run while connecting")
        #expect(machine.responseDeadline == nil)
        let endsAtNode2 = machine.attached(reused: true, now: Self.at(3))
        #expect(endsAtNode2)
        #expect(machine.responseDeadline == Self.at(8))
        #expect(!machine.responseTimedOut(now: Self.at(7)))
        #expect(machine.responseTimedOut(now: Self.at(8)))
        let ending = machine.cutOffNode()
        #expect(ending == .answer(.gatewayTimeout, close: true))
        #expect(machine.phase == .finished && machine.responseDeadline == nil)
    }

    @Test func aResponseThatBeganIsNotTimedOut() {
        var machine = Self.machine(timeout: .seconds(1))
        _ = machine.attached(reused: false, now: Self.at(0))
        let endsAtNode = machine.requestEndReceived(now: Self.at(0))
        #expect(endsAtNode)
        let headAction = Self.respond(&machine)
        #expect(headAction == .relay(closeClient: false))
        #expect(machine.responseDeadline == nil && !machine.responseTimedOut(now: Self.at(60)))
    }

    @Test func interimResponsesPassToHTTP11ClientsOnlyAndChangeNothing() {
        var machine = Self.machine()
        _ = machine.attached(reused: false, now: Self.at(0))
        let headAction = machine.responseHeadReceived(status: 100, isInterim: true, nodeKeepsAlive: true, endsWithConnection: false, draining: false)
        #expect(headAction == .relayInterim)
        #expect(machine.phase == .awaitingResponse && !machine.responseStarted)
        var old = Self.machine(http10: true)
        _ = old.attached(reused: false, now: Self.at(0))
        let headAction2 = old.responseHeadReceived(status: 103, isInterim: true, nodeKeepsAlive: true, endsWithConnection: false, draining: false)
        #expect(headAction2 == .dropInterim)
    }

    @Test func aSwitchIsRelayedOnlyWhenAskedFor() {
        var unasked = Self.machine()
        _ = unasked.attached(reused: false, now: Self.at(0))
        let headAction = unasked.responseHeadReceived(status: 101, isInterim: true, nodeKeepsAlive: true, endsWithConnection: false, draining: false)
        #expect(headAction == .refuseSwitch)
        #expect(!unasked.responseStarted)
        var asked = Self.machine(upgrade: true)
        _ = asked.requestEndReceived(now: Self.at(0))
        _ = asked.attached(reused: false, now: Self.at(0))
        let headAction2 = asked.responseHeadReceived(status: 101, isInterim: true, nodeKeepsAlive: true, endsWithConnection: false, draining: false)
        #expect(headAction2 == .relayAndTunnel(closeClient: false))
        #expect(asked.phase == .finished && asked.status == 101)
    }

    @Test(arguments: [
        // keep-alive client, node's framing, draining → the client's connection closes after the response
        (true, false, false, false),
        (false, false, false, true),
        (true, true, false, true),
        (true, false, true, true),
    ])
    func theClientConnectionClosesWhenTheClientTheNodeOrADrainSaysSo(keepAlive: Bool, untilClose: Bool, draining: Bool, closes: Bool) {
        var machine = Self.machine(keepAlive: keepAlive)
        _ = machine.requestEndReceived(now: Self.at(0))
        _ = machine.attached(reused: false, now: Self.at(0))
        let headAction = Self.respond(&machine, untilClose: untilClose, draining: draining)
        #expect(headAction == .relay(closeClient: closes))
        let end = machine.responseEndReceived(draining: draining)
        #expect(end.client == (closes ? .close : .idle))
    }

    @Test func aDrainThatBeginsDuringTheResponseClosesAfterIt() {
        var machine = Self.machine()
        _ = machine.requestEndReceived(now: Self.at(0))
        _ = machine.attached(reused: false, now: Self.at(0))
        let headAction = Self.respond(&machine)
        #expect(headAction == .relay(closeClient: false))
        let afterResponse = machine.responseEndReceived(draining: true)
        #expect(afterResponse == .init(nodeConnectionReusable: true, client: .close))
    }

    @Test func aResponseBeforeTheRequestEndedLingersThenCloses() {
        var machine = Self.machine()
        _ = machine.attached(reused: false, now: Self.at(0))
        _ = machine.requestBodyReceived(100)
        let headAction = Self.respond(&machine, 413, nodeKeepsAlive: false)
        #expect(headAction == .relay(closeClient: true), "the client is told the connection closes")
        machine.responseBodyReceived(7)
        let afterResponse = machine.responseEndReceived(draining: false)
        #expect(afterResponse == .init(nodeConnectionReusable: false, client: .lingerThenClose))
        #expect(machine.status == 413 && machine.responseBytes == 7)
    }

    @Test func aFailedConnectIsRetriedOnceWhateverTheMethod() {
        var machine = Self.machine(idempotent: false)
        let failure = machine.nodeFailed(nothingSent: true, draining: false)
        #expect(failure == .tryAnotherNode(orSameNode: false))
        machine.retrying()
        #expect(machine.attempts == 2 && machine.phase == .waitingForNode)
        let failure2 = machine.nodeFailed(nothingSent: true, draining: false)
        #expect(failure2 == .end(.answer(.badGateway, close: true)), "the request has not ended: close")
    }

    @Test func aFailedNodeIsRetriedOnlyForAnIdempotentRequestWhoseBodyWasNotStreamed() {
        var get = Self.machine()
        _ = get.requestEndReceived(now: Self.at(0))
        _ = get.attached(reused: true, now: Self.at(0))
        let failure = get.nodeFailed(nothingSent: false, draining: false)
        #expect(failure == .tryAnotherNode(orSameNode: true), "a pooled connection may only have been stale")
        var post = Self.machine(idempotent: false)
        _ = post.requestEndReceived(now: Self.at(0))
        _ = post.attached(reused: false, now: Self.at(0))
        let failure2 = post.nodeFailed(nothingSent: false, draining: false)
        #expect(failure2 == .end(.answer(.badGateway, close: false)))
        var streamed = Self.machine()
        _ = streamed.attached(reused: false, now: Self.at(0))
        _ = streamed.requestBodyReceived(3)
        _ = streamed.requestEndReceived(now: Self.at(0))
        let failure3 = streamed.nodeFailed(nothingSent: false, draining: true)
        #expect(failure3 == .end(.answer(.badGateway, close: true)))
    }

    @Test func aPinnedRequestMovesOnlyOffAPooledConnection() {
        var fresh = Self.machine(pinned: true)
        _ = fresh.attached(reused: false, now: Self.at(0))
        let failure = fresh.nodeFailed(nothingSent: false, draining: false)
        #expect(failure == .end(.answer(.badGateway, close: true)))
        var pooled = Self.machine(pinned: true)
        _ = pooled.attached(reused: true, now: Self.at(0))
        let failure2 = pooled.nodeFailed(nothingSent: false, draining: false)
        #expect(failure2 == .tryAnotherNode(orSameNode: true))
        let ending = pooled.cannotRetry(.badGateway, draining: false)
        #expect(ending == .answer(.badGateway, close: true))
    }

    @Test func aNodeThatFailsMidResponseClosesTheClient() {
        var machine = Self.machine()
        _ = machine.requestEndReceived(now: Self.at(0))
        _ = machine.attached(reused: false, now: Self.at(0))
        _ = Self.respond(&machine, 200)
        let failure = machine.nodeFailed(nothingSent: false, draining: false)
        #expect(failure == .end(.closeClient(afterFlushing: false)))
        #expect(machine.status == 200 && machine.statusWhenAbandoned == 200)
    }

    @Test func stallsEndTheExchangeByWhoHeldItUp() {
        var waiting = Self.machine()
        _ = waiting.attached(reused: false, now: Self.at(0))
        let ending = waiting.clientStalled()
        #expect(ending == .answer(.requestTimeout, close: true))
        var responding = Self.machine()
        _ = responding.requestEndReceived(now: Self.at(0))
        _ = responding.attached(reused: false, now: Self.at(0))
        _ = Self.respond(&responding)
        var copy = responding
        let ending2 = responding.clientStalled()
        #expect(ending2 == .closeClient(afterFlushing: false), "the client takes nothing: nothing more can be flushed")
        let ending3 = copy.nodeStalled()
        #expect(ending3 == .closeClient(afterFlushing: true), "what the client got so far is flushed")
        var sending = Self.machine()
        _ = sending.attached(reused: false, now: Self.at(0))
        let ending4 = sending.nodeStalled()
        #expect(ending4 == .answer(.gatewayTimeout, close: true))
    }

    /// One look of the sweep with the stall timeouts of `ConnectionTimeoutsTests` (20 s, 30 s).
    static func look(_ machine: inout ExchangeMachine, clientHoldsUp: Bool, at second: Int64) -> ExchangeMachine.Stall? {
        machine.stall(clientHoldsUp: clientHoldsUp, clientStall: .seconds(20), nodeStall: .seconds(30), now: at(second))
    }

    @Test func aStallIsBlamedOnTheSideThatHoldsTheExchangeUp() {
        // the client sends its body, then stops: client_stall from the last move
        var sending = Self.machine()
        _ = sending.attached(reused: false, now: Self.at(0))
        _ = sending.requestBodyReceived(100)
        #expect(Self.look(&sending, clientHoldsUp: true, at: 1) == nil)
        _ = sending.requestBodyReceived(100)
        #expect(Self.look(&sending, clientHoldsUp: true, at: 2) == nil)
        #expect(Self.look(&sending, clientHoldsUp: true, at: 21) == nil)
        #expect(Self.look(&sending, clientHoldsUp: true, at: 22) == .client)
        #expect(sending.clientStalled() == .answer(.requestTimeout, close: true))
        // the node takes none of the body: upstream_stall
        var blocked = Self.machine()
        _ = blocked.attached(reused: false, now: Self.at(0))
        _ = blocked.requestBodyReceived(300)
        #expect(Self.look(&blocked, clientHoldsUp: false, at: 1) == nil)
        #expect(Self.look(&blocked, clientHoldsUp: false, at: 30) == nil)
        #expect(Self.look(&blocked, clientHoldsUp: false, at: 31) == .node)
        #expect(blocked.nodeStalled() == .answer(.gatewayTimeout, close: true))
    }

    @Test func waitingForTheResponseHeadIsNotAStallAndTheHeadRestartsTheCount() {
        var machine = Self.machine()
        _ = machine.requestBodyReceived(50)
        _ = machine.attached(reused: false, now: Self.at(0))
        _ = machine.requestEndReceived(now: Self.at(0))
        for second in [1, 100, 1000] as [Int64] {
            #expect(Self.look(&machine, clientHoldsUp: false, at: second) == nil)
        }
        _ = Self.respond(&machine)
        #expect(Self.look(&machine, clientHoldsUp: false, at: 1001) == nil)
        #expect(Self.look(&machine, clientHoldsUp: false, at: 1030) == nil)
        #expect(Self.look(&machine, clientHoldsUp: false, at: 1031) == .node)
        #expect(machine.nodeStalled() == .closeClient(afterFlushing: true))
    }

    @Test func anExchangeWaitingForItsNodeIsNotWatchedForStalls() {
        var machine = Self.machine()
        _ = machine.requestBodyReceived(10)
        #expect(Self.look(&machine, clientHoldsUp: true, at: 0) == nil)
        #expect(Self.look(&machine, clientHoldsUp: true, at: 500) == nil, "connecting is the connect timeout's")
    }

    @Test func anAbandonedExchangeIsRecordedAs499UnlessItsResponseBegan() {
        var machine = Self.machine()
        machine.abandoned()
        #expect(machine.statusWhenAbandoned == 499 && machine.phase == .finished)
    }
}
