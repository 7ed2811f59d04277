import Synchronization
import Testing

/// The `.realSockets` trait: tests that time things on real sockets (rates, timeouts, latencies,
/// heap in use after closed connections) run one at a time, across every test module, while the
/// unit suites run in parallel beside them. Without it, `swift test` ran several socket tests at
/// once on two cores and their timings failed (a 1.5 s timeout seen after 4 s, a rate limit
/// admitting everything); `--no-parallel` avoided that only by running every unit test serially too.
public struct RealSocketsTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await Self.gate.enter()
        defer { Self.gate.leave() }
        try await function()
    }

    /// One test at a time, in the order they asked.
    static let gate = Gate()

    final class Gate: Sendable {
        private struct State {
            var busy = false
            var waiting: [CheckedContinuation<Void, Never>] = []
        }

        private let state = Mutex(State())

        func enter() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let admitted = state.withLock { state in
                    if state.busy {
                        state.waiting.append(continuation)
                        return false
                    }
                    state.busy = true
                    return true
                }
                if admitted { continuation.resume() }
            }
        }

        func leave() {
            let next = state.withLock { state in
                if state.waiting.isEmpty {
                    state.busy = false
                    return nil as CheckedContinuation<Void, Never>?
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
    }
}

extension Trait where Self == RealSocketsTrait {
    /// Runs the test alone among the tests with this trait (see ``RealSocketsTrait``).
    public static var realSockets: Self { RealSocketsTrait() }
}
