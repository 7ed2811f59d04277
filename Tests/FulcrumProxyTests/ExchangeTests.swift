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
        let decision = try #require(runtime.router.route(request))
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
        used.attempts = 2
        used.buffered = [ByteBuffer(string: "body")]
        used.requestEnded = true
        used.bodyStreamed = true
        used.closesClient = true
        used.responseStarted = true
        used.status = 502
        used.responseBytes = 10
        used.requestBytes = 20
        used.upstreamKeepAlive = false
        used.usesReusedConnection = true
        used.breakerAdmission = .trial
        used.outcomeRecorded = true
        used.isFinished = true
        used.nodeGroup = [true, false]
        used.setCookie = "c=1"
        used.heldSlots = [ManagedAtomic(0)]
        used.begin(head: request.head, upstreamHead: ByteBuffer(string: "up"), runtime: runtime, decision: decision, node: 1, requestID: .received("r2"), start: start)
        let expected = Mirror(reflecting: fresh()).children.map { "\($0.label ?? "?") = \(Self.describe($0.value))" }
        let actual = Mirror(reflecting: used).children.map { "\($0.label ?? "?") = \(Self.describe($0.value))" }
        #expect(expected.count >= 25)
        #expect(actual == expected)
    }

    /// Objects compare by identity, the rest by their description.
    static func describe(_ value: Any) -> String {
        if let object = value as? AnyObject, !(value is String), type(of: value) is AnyClass { return "object \(ObjectIdentifier(object))" }
        return String(describing: value)
    }
}
