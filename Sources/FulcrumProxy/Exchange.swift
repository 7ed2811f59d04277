import Atomics
import FulcrumCore
import FulcrumHTTP1
import NIOCore

/// One request/response exchange between a client and a node, from the request head to the end
/// of the response: what was decided for it and how far it has got. A connection uses the same
/// object for its next exchange once nothing else holds it (``begin(head:upstreamHead:runtime:decision:node:requestID:start:)``),
/// so that a keep-alive request allocates none.
final class Exchange {
    /// The request head as received (its target is normalised again for a retry's balancing,
    /// rather than every exchange holding the routing view's slices of it).
    var head: RequestHead { heldHead! }
    /// `nil` once the connection let go of the exchange's buffers (``letGoOfBuffers(empty:)``).
    private var heldHead: RequestHead?
    /// The head sent to the node (kept for a retry on another node).
    private(set) var upstreamHead: ByteBuffer
    private(set) var runtime: RuntimeConfig
    private(set) var decision: RouteDecision
    private(set) var requestID: RequestID
    private(set) var start: NIODeadline
    /// How far the exchange has got and what happens next.
    var machine: ExchangeMachine
    /// The node currently tried.
    var node: Int
    /// The node tried first, when a retry moved the request elsewhere.
    var failedNode: Int?
    /// Request body bytes received before an upstream connection was attached.
    var buffered: [ByteBuffer] = []
    /// How the service's circuit breaker admitted the request, when it has one.
    var breakerAdmission: CircuitBreaker.Admission?
    /// Whether an outcome (status, failure) was recorded for passive health and the breaker.
    var outcomeRecorded = false
    /// Whether the exchange ended and gave back what it took.
    var isFinished = false
    /// The nodes of the service this request may use (a split target's node group); `nil`: all.
    var nodeGroup: [Bool]?
    /// A `Set-Cookie` for the response (a split's sticky cookie).
    var setCookie: String?
    /// In-flight slots (route and service `max_in_flight`) this exchange holds until it finishes.
    var heldSlots: [ManagedAtomic<Int>] = []
    /// The route's `response_headers`, rendered for this request; `nil` when it has none.
    var responseEdits: ResponseFieldEdits?

    /// What the policy admitted (``LoopPolicy/Admitted``) comes in with the rest, so that each
    /// field is set once per exchange.
    init(
        head: RequestHead, upstreamHead: ByteBuffer, runtime: RuntimeConfig, decision: RouteDecision, node: Int, requestID: RequestID, start: NIODeadline,
        nodeGroup: [Bool]? = nil, setCookie: String? = nil, breakerAdmission: CircuitBreaker.Admission? = nil, heldSlots: [ManagedAtomic<Int>] = []
    ) {
        self.heldHead = head
        self.upstreamHead = upstreamHead
        self.runtime = runtime
        self.decision = decision
        self.node = node
        self.requestID = requestID
        self.start = start
        self.machine = Self.machine(for: head, runtime, decision)
        self.nodeGroup = nodeGroup
        self.setCookie = setCookie
        self.breakerAdmission = breakerAdmission
        self.heldSlots = heldSlots
    }

    /// A new exchange's machine, from the request and what was decided for it.
    private static func machine(for head: RequestHead, _ runtime: RuntimeConfig, _ decision: RouteDecision) -> ExchangeMachine {
        let isIdempotent = switch head.method {
        case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE": true
        default: false
        }
        return ExchangeMachine(
            request: ExchangeMachine.Request(
                keepAlive: head.keepAlive, takesInterimResponses: head.minorVersion == 1, isIdempotent: isIdempotent,
                asksForUpgrade: head.isUpgrade, isPinned: decision.pinnedNode != nil),
            responseTimeout: runtime.upstreamResponseTimeout)
    }

    /// Makes this object a new exchange, as ``init(head:upstreamHead:runtime:decision:node:requestID:start:)``
    /// would (`ExchangeTests` checks that no field keeps a value of the last one). Only for an
    /// object nothing else holds: a callback still waiting with it must not see another exchange.
    func begin(
        head: RequestHead, upstreamHead: ByteBuffer, runtime: RuntimeConfig, decision: RouteDecision, node: Int, requestID: RequestID, start: NIODeadline,
        nodeGroup: [Bool]? = nil, setCookie: String? = nil, breakerAdmission: CircuitBreaker.Admission? = nil, heldSlots: [ManagedAtomic<Int>] = []
    ) {
        self.heldHead = head
        self.upstreamHead = upstreamHead
        self.runtime = runtime
        self.decision = decision
        self.node = node
        self.requestID = requestID
        self.start = start
        machine = Self.machine(for: head, runtime, decision)
        failedNode = nil
        buffered = []
        self.breakerAdmission = breakerAdmission
        outcomeRecorded = false
        isFinished = false
        self.nodeGroup = nodeGroup
        self.setCookie = setCookie
        self.heldSlots = heldSlots
        responseEdits = nil
    }

    /// Lets go of the request head and of the head sent to the node once the exchange is over and
    /// its connection waits for the next request: the reader then parses the next head into the
    /// same field storage, and the next head for the node is written into the same buffer, rather
    /// than both being copied because this idle object still held them.
    /// Returns the head, for the reader to parse the next one into.
    func letGoOfBuffers(empty: ByteBuffer) -> RequestHead? {
        defer { heldHead = nil }
        upstreamHead = empty
        return heldHead
    }

    var serviceName: String { runtime.config.services[decision.serviceIndex].name }
    var nodeName: String { runtime.config.services[decision.serviceIndex].nodes[node].name }
    var routeName: String { decision.routeIndex.map { runtime.config.routes[$0].name } ?? "default" }
}

/// The fields a route's `response_headers` take out of and add to the responses it relays,
/// rendered for one request.
struct ResponseFieldEdits {
    var removed: [String]
    var added: [(name: String, value: String)]
}
