import Testing
@testable import FulcrumCore

@Suite struct CircuitBreakerTests {
    let second: UInt64 = 1_000_000_000
    let policy = CircuitBreaker.Policy(
        window: .seconds(10), minimumRequests: 4, failureRatio: 0.5, slowThreshold: .milliseconds(100), slowRatio: 0.75,
        coolDown: .seconds(5), trialRequests: 2)

    func send(_ breaker: inout CircuitBreaker, _ outcome: CircuitBreaker.Outcome, at now: UInt64) -> CircuitState? {
        let admission = breaker.admit(now: now)
        return breaker.record(outcome, admission: admission, now: now)
    }

    @Test func closedStaysClosedBelowTheMinimumRequests() {
        var breaker = CircuitBreaker(policy: policy)
        for _ in 0..<3 { #expect(send(&breaker, .failure, at: 0) == nil) }
        #expect(breaker.state == .closed)
    }

    @Test func closedOpensOnTheFailureRatio() {
        var breaker = CircuitBreaker(policy: policy)
        #expect(send(&breaker, .success(latency: .milliseconds(1)), at: 0) == nil)
        #expect(send(&breaker, .success(latency: .milliseconds(1)), at: 0) == nil)
        #expect(send(&breaker, .failure, at: 0) == nil)
        #expect(send(&breaker, .failure, at: second) == .open(until: 6 * second))
        #expect(breaker.admit(now: 2 * second) == .rejected(retryAfter: .seconds(4)))
    }

    @Test func closedOpensOnTheSlowRatio() {
        var breaker = CircuitBreaker(policy: policy)
        for _ in 0..<3 { _ = send(&breaker, .success(latency: .milliseconds(150)), at: 0) }
        #expect(breaker.state == .closed)
        #expect(send(&breaker, .success(latency: .milliseconds(101)), at: 0) == .open(until: 5 * second))
    }

    @Test func oldOutcomesLeaveTheRollingWindow() {
        var breaker = CircuitBreaker(policy: policy)
        _ = send(&breaker, .failure, at: 0)
        _ = send(&breaker, .failure, at: 0)
        // ten seconds later those two failures are out of the window
        for _ in 0..<3 { _ = send(&breaker, .success(latency: .zero), at: 10 * second) }
        #expect(send(&breaker, .failure, at: 10 * second) == nil, "1 failure of 4 in the window")
        #expect(breaker.state == .closed)
    }

    @Test func halfOpenClosesAfterTheTrialsSucceed() {
        var breaker = CircuitBreaker(policy: policy)
        for _ in 0..<4 { _ = send(&breaker, .failure, at: 0) }
        #expect(breaker.state == .open(until: 5 * second))
        #expect(breaker.admit(now: 5 * second - 1) == .rejected(retryAfter: .nanoseconds(1)))
        let firstTrial = breaker.admit(now: 5 * second)
        #expect(firstTrial == .trial)
        #expect(breaker.state == .halfOpen(admitted: 1, succeeded: 0))
        let secondTrial = breaker.admit(now: 5 * second)
        #expect(secondTrial == .trial)
        #expect(breaker.admit(now: 5 * second) == .rejected(retryAfter: .seconds(1)), "only the configured trials pass")
        #expect(breaker.record(.success(latency: .zero), admission: firstTrial, now: 5 * second) == nil)
        #expect(breaker.record(.success(latency: .zero), admission: secondTrial, now: 5 * second) == .closed)
        #expect(breaker.admit(now: 5 * second) == .allowed)
        // the window starts empty after closing
        #expect(send(&breaker, .failure, at: 5 * second) == nil)
    }

    @Test func halfOpenReopensOnAFailedTrial() {
        var breaker = CircuitBreaker(policy: policy)
        for _ in 0..<4 { _ = send(&breaker, .failure, at: 0) }
        let trial = breaker.admit(now: 6 * second)
        #expect(breaker.record(.failure, admission: trial, now: 6 * second) == .open(until: 11 * second))
    }

    @Test func outcomesFromBeforeAStateChangeAreIgnored() {
        var breaker = CircuitBreaker(policy: policy)
        let late = breaker.admit(now: 0)  // admitted while closed, finishes after the circuit opened
        for _ in 0..<4 { _ = send(&breaker, .failure, at: 0) }
        #expect(breaker.record(.success(latency: .zero), admission: late, now: second) == nil)
        #expect(breaker.state == .open(until: 5 * second))
        let trial = breaker.admit(now: 5 * second)
        #expect(breaker.record(.failure, admission: late, now: 5 * second) == nil, "a closed-era failure does not reopen a half-open circuit")
        #expect(breaker.state == .halfOpen(admitted: 1, succeeded: 0))
        _ = trial
    }
}
