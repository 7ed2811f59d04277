import FulcrumCore
import NIOCore
import Testing
@testable import FulcrumProxy

/// Every timeout of a client connection, under a time the tests set: no sleeping (an exchange's
/// stalls and response timeout: `ExchangeMachineTests`). (The socket
/// suites keep one end-to-end test of each: StallIntegrationTests, ConnectionLimitIntegrationTests.)
@Suite struct ConnectionTimeoutsTests {
    static let limits = ConnectionTimeouts.Limits(Timeouts(
        clientIdle: .seconds(60), clientStall: .seconds(20), upstreamStall: .seconds(30), tunnelIdle: .seconds(3600)))

    static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(1_000 + seconds) * 1_000_000_000) }

    @Test func aFirstHeadIsTimedFromTheAcceptAndALaterOneFromItsFirstByte() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(10)) == .none)
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(11)) == .headTooSlow)
        timeouts.requestStarted()
        timeouts.becameIdle(at: Self.at(12))
        // idle between requests: client_idle, not client_head
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(71)) == .none)
        timeouts.headBegan(at: Self.at(71))
        timeouts.headBegan(at: Self.at(75))  // more bytes of the same head do not restart it
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(81)) == .none)
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(82)) == .headTooSlow)
    }

    @Test func anIdleConnectionClosesAfterClientIdle() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        timeouts.requestStarted()
        timeouts.becameIdle(at: Self.at(5))
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(65)) == .none)
        #expect(timeouts.verdict(.waitingForRequest, limits: Self.limits, now: Self.at(66)) == .idleTooLong)
    }

    @Test func onlyAConnectionStillInItsFirstHeadMakesWayAtTheCap() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        #expect(!timeouts.isStillInFirstHead(openedBefore: Self.at(0)))
        #expect(timeouts.isStillInFirstHead(openedBefore: Self.at(1)))
        timeouts.requestStarted()
        timeouts.becameIdle(at: Self.at(2))
        timeouts.headBegan(at: Self.at(3))
        #expect(!timeouts.isStillInFirstHead(openedBefore: Self.at(10)), "a served connection keeps its place")
    }

    @Test func aDroppedBodyEndsWhenItStopsOrAfterTheLingeringTime() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        timeouts.requestStarted()
        timeouts.lingers(since: Self.at(0))
        // a body that keeps coming is dropped for the lingering time at most
        for second in 1..<30 {
            #expect(timeouts.verdict(.droppingBody(dropped: second * 1000), limits: Self.limits, now: Self.at(Int64(second))) == .none)
        }
        #expect(timeouts.verdict(.droppingBody(dropped: 30_000), limits: Self.limits, now: Self.at(30)) == .silent)
        // one that stops is closed after client_stall
        var stopped = ConnectionTimeouts(acceptedAt: Self.at(0))
        stopped.requestStarted()
        #expect(stopped.verdict(.droppingBody(dropped: 10), limits: Self.limits, now: Self.at(1)) == .none)
        #expect(stopped.verdict(.droppingBody(dropped: 10), limits: Self.limits, now: Self.at(21)) == .silent)
    }

    @Test func aSilentTunnelClosesAfterTunnelIdle() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        timeouts.requestStarted()
        #expect(timeouts.verdict(.tunneling(relayed: 5), limits: Self.limits, now: Self.at(1)) == .none)
        #expect(timeouts.verdict(.tunneling(relayed: 6), limits: Self.limits, now: Self.at(3000)) == .none)
        #expect(timeouts.verdict(.tunneling(relayed: 6), limits: Self.limits, now: Self.at(6599)) == .none)
        #expect(timeouts.verdict(.tunneling(relayed: 6), limits: Self.limits, now: Self.at(6600)) == .silent)
    }

    @Test func aCloseWaitsForItsLastBytesOnlyForClientStall() {
        var timeouts = ConnectionTimeouts(acceptedAt: Self.at(0))
        timeouts.requestStarted()
        timeouts.closesAfterFlush(at: Self.at(10))
        timeouts.closesAfterFlush(at: Self.at(15))  // asked again: still timed from the first
        #expect(timeouts.verdict(.closing, limits: Self.limits, now: Self.at(30)) == .none)
        #expect(timeouts.verdict(.closing, limits: Self.limits, now: Self.at(31)) == .flushStalled)
    }
}
