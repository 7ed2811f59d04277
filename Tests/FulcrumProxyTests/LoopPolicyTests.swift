import FulcrumCore
import FulcrumHTTP1
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import FulcrumProxy

/// The loop's policy alone, without sockets and under a clock the tests set: each admission
/// step refuses, counts and gives back what it took as it should.
@Suite struct LoopPolicyTests {
    static let second: UInt64 = 1_000_000_000

    static func policy(_ service: String, route: String = "", board: HealthBoard? = nil) throws -> LoopPolicy {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return LoopPolicy(runtime: try runtime(service, route: route), logger: logger, healthBoard: board)
    }

    static func runtime(_ service: String, route: String = "") throws -> RuntimeConfig {
        try RuntimeConfig(config: FulcrumConfig.parse("""
            listen: [{ port: 0 }]
            services:
              s:
                \(service)
                nodes: [{ name: a, host: 127.0.0.1, port: 9001 }, { name: b, host: 127.0.0.1, port: 9002 }]
            routes:
              - { name: r, match: { path_prefix: / }, service: s\(route) }
            """), generation: 1)
    }

    static func request(_ path: String = "/", headers: String = "") throws -> HeadRoutingRequest {
        let head = try RequestHead(parsing: ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: h\r\n\(headers)\r\n"))
        return try HeadRoutingRequest(head: head, clientIP: "127.0.0.2", encodedSlashes: .refuse)
    }

    /// Admits a request at `now`; the admitted node and the exchange it would run, or the refusal.
    static func admit(_ policy: LoopPolicy, _ request: HeadRoutingRequest, at now: UInt64) -> Result<Exchange, Refused> {
        let routed = policy.runtime.router.route(request)!.decision!
        switch policy.admit(request, routed: routed, clientIP: "127.0.0.2", client: IPAddress(parsing: "127.0.0.2")!, now: now) {
        case .proceed(let admitted):
            let exchange = Exchange(
                head: request.head, upstreamHead: ByteBuffer(), runtime: policy.runtime, decision: admitted.decision,
                node: admitted.node, requestID: .received("t"), start: .uptimeNanoseconds(now), nodeGroup: admitted.nodeGroup,
                breakerAdmission: admitted.breakerAdmission, heldSlots: admitted.heldSlots)
            return .success(exchange)
        case .refuse(let refusal):
            return .failure(Refused(status: refusal.status.code, detail: refusal.detail ?? "", headers: refusal.extraHeaders.map { "\($0.0): \($0.1)" }))
        }
    }

    struct Refused: Error, Equatable {
        var status: UInt
        var detail: String
        var headers: [String]
    }

    @Test func aRateLimitRefusesOverItsBurstAndAdmitsAgainAfterItRefills() throws {
        let policy = try Self.policy("rate_limit: { algorithm: token_bucket, rate: 1, burst: 2, key: client_ip }")
        let request = try Self.request()
        let start = 100 * Self.second
        for _ in 0..<2 { _ = try Self.admit(policy, request, at: start).get() }
        let refused = Self.admit(policy, request, at: start)
        guard case .failure(let refusal) = refused else { Issue.record("a third request within the burst was admitted"); return }
        #expect(refusal.status == 429 && refusal.headers.contains("Retry-After: 1"))
        #expect(policy.serviceRejections == [1])
        #expect(throws: Never.self) { try Self.admit(policy, request, at: start + Self.second).get() }
    }

    @Test func anInFlightLimitIsGivenBackWhenTheExchangeEnds() throws {
        let policy = try Self.policy("max_in_flight: 1")
        let request = try Self.request()
        let first = try Self.admit(policy, request, at: Self.second).get()
        #expect(Self.admit(policy, request, at: Self.second) == .failure(Refused(
            status: 503, detail: "too many requests in flight for service 's'", headers: [])))
        policy.finished(first, status: 200, now: 2 * Self.second)
        let second = try Self.admit(policy, request, at: 2 * Self.second).get()
        #expect(policy.balancers[0].inFlight.reduce(0, +) == 1)
        policy.finished(second, status: 200, now: 3 * Self.second)
        #expect(policy.balancers[0].inFlight == [0, 0])
    }

    @Test func anOpenCircuitRefusesUntilItsCoolDownEnds() throws {
        let policy = try Self.policy("circuit_breaker: { window: 10s, minimum_requests: 2, failure_ratio: 50%, cool_down: 5s, trial_requests: 1 }")
        let request = try Self.request()
        let start = 50 * Self.second
        for _ in 0..<2 {
            let exchange = try Self.admit(policy, request, at: start).get()
            policy.recordOutcome(exchange, status: 503, now: start)
            policy.finished(exchange, status: 503, now: start)
        }
        guard case .failure(let refusal) = Self.admit(policy, request, at: start + Self.second) else {
            Issue.record("the circuit did not open after two failures")
            return
        }
        #expect(refusal.status == 503 && refusal.detail == "circuit open for service 's'" && refusal.headers == ["Retry-After: 4"])
        // after the cool-down one trial goes through
        let trial = try Self.admit(policy, request, at: start + 6 * Self.second).get()
        #expect(trial.breakerAdmission != nil)
    }

    @Test func downNodesAreNeitherChosenNorRetriedOn() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let runtime = try Self.runtime("health_check: { type: tcp, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }")
        let board = HealthBoard(runtime: runtime, logger: logger) { _ in }
        let policy = LoopPolicy(runtime: runtime, logger: logger, healthBoard: board)
        board.recordProbe(service: "s", node: "b", success: false, detail: "refused")
        policy.install(try #require(board.snapshot(for: 1)))
        let request = try Self.request()
        for step in 0..<20 {
            let exchange = try Self.admit(policy, request, at: UInt64(step + 1) * Self.second).get()
            #expect(exchange.node == 0, "down node b was chosen")
            // the only other node is down: no retry node
            #expect(policy.retryNode(for: exchange, clientIP: "127.0.0.2", now: UInt64(step + 1) * Self.second) == nil)
            policy.finished(exchange, status: 200, now: UInt64(step + 1) * Self.second)
        }
        // without health, a retry goes to the other node
        board.recordProbe(service: "s", node: "b", success: true, detail: "ok")
        policy.install(try #require(board.snapshot(for: 1)))
        let exchange = try Self.admit(policy, request, at: 30 * Self.second).get()
        #expect(policy.retryNode(for: exchange, clientIP: "127.0.0.2", now: 30 * Self.second) == 1 - exchange.node)
    }

    @Test func aRefusalAfterTheBreakerAdmittedGivesTheAdmissionBack() throws {
        // a breaker in its trial state admits one request at a time: a refusal that kept the
        // admission would leave the circuit waiting for a trial that never ends
        let policy = try Self.policy(
            "circuit_breaker: { window: 10s, minimum_requests: 1, failure_ratio: 50%, cool_down: 1s, trial_requests: 1 }\n    max_in_flight: 1")
        let request = try Self.request()
        let failed = try Self.admit(policy, request, at: Self.second).get()
        policy.recordOutcome(failed, status: 502, now: Self.second)
        policy.finished(failed, status: 502, now: Self.second)
        let held = Exchange(
            head: request.head, upstreamHead: ByteBuffer(), runtime: policy.runtime, decision: policy.runtime.router.route(request)!.decision!,
            node: 0, requestID: .received("t"), start: .uptimeNanoseconds(Self.second))
        // take the one in-flight place by hand, so that the trial is refused after the breaker
        let counter = try #require(policy.runtime.serviceInFlight[0])
        #expect(RuntimeConfig.takeSlot(counter, limit: 1))
        held.heldSlots = [counter]
        #expect(Self.admit(policy, request, at: 3 * Self.second) == .failure(Refused(
            status: 503, detail: "too many requests in flight for service 's'", headers: [])))
        policy.finished(held, status: 200, now: 3 * Self.second)
        #expect(throws: Never.self) { try Self.admit(policy, request, at: 3 * Self.second).get() }
    }
}

extension Result where Success == Exchange, Failure == LoopPolicyTests.Refused {
    static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.failure(let a), .failure(let b)): return a == b
        case (.success(let a), .success(let b)): return a === b
        default: return false
        }
    }
}
