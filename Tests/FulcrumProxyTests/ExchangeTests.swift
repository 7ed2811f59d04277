import Atomics
import FulcrumCore
import FulcrumHTTP1
import NIOCore
import Testing
@testable import FulcrumProxy

/// A connection uses one object for its exchanges: a field that `begin` forgot to reset would carry
/// one request's state (its status, its retry, its sticky cookie...) into the next.
@Suite struct ExchangeTests {
    @Test func anExchangeBegunAgainHoldsNothingOfTheLastOne() throws {
        let runtime = try LoopPolicyTests.runtime("max_in_flight: 5")
        let request = try LoopPolicyTests.request("/next")
        let decision = try #require(runtime.router.route(request)?.decision)
        let start = NIODeadline.uptimeNanoseconds(42)
        func fresh() -> Exchange {
            Exchange(head: request.head, upstreamHead: ByteBuffer(string: "up"), runtime: runtime, decision: decision, node: 1, requestID: .received("r2"), start: start)
        }
        let old = try LoopPolicyTests.request("/old")
        let used = Exchange(
            head: old.head, upstreamHead: ByteBuffer(string: "old"), runtime: try LoopPolicyTests.runtime(""), decision: decision, node: 0,
            requestID: .received("r1"), start: .uptimeNanoseconds(1))
        // every field the handler changes during an exchange
        used.failedNode = 0
        _ = used.machine.attached(reused: true, now: .uptimeNanoseconds(2))
        _ = used.machine.requestBodyReceived(20)
        _ = used.machine.nodeFailed(nothingSent: false, draining: false)
        used.machine.retrying()
        _ = used.machine.requestEndReceived(now: .uptimeNanoseconds(3))
        _ = used.machine.attached(reused: false, now: .uptimeNanoseconds(4))
        _ = used.machine.responseHeadReceived(status: 502, isInterim: false, nodeKeepsAlive: false, endsWithConnection: true, draining: false)
        used.machine.responseBodyReceived(10)
        _ = used.machine.responseEndReceived(draining: false)
        used.breakerAdmission = .trial
        used.outcomeRecorded = true
        used.isFinished = true
        used.nodeGroup = [true, false]
        used.setCookie = "c=1"
        used.heldSlots = [ManagedAtomic(0)]
        used.begin(head: request.head, upstreamHead: ByteBuffer(string: "up"), runtime: runtime, decision: decision, node: 1, requestID: .received("r2"), start: start)
        let expected = Mirror(reflecting: fresh()).children.map { "\($0.label ?? "?") = \(Self.describe($0.value))" }
        let actual = Mirror(reflecting: used).children.map { "\($0.label ?? "?") = \(Self.describe($0.value))" }
        #expect(expected.count >= 15)
        #expect(actual == expected)
    }

    /// Objects compare by identity, the rest by their description.
    static func describe(_ value: Any) -> String {
        if let object = value as? AnyObject, !(value is String), type(of: value) is AnyClass { return "object \(ObjectIdentifier(object))" }
        return String(describing: value)
    }
}
