#if canImport(Glibc)
import Glibc
#endif
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

/// A TCP port of 127.0.0.1 that nothing listens on: a socket bound to port 0 (the kernel picks a
/// free port) and never listening. Keep the descriptor open for a port that refuses connections
/// for as long as the process runs (no other test can take it meanwhile); close it for a port a
/// server started next is to listen on.
public func boundLoopbackPort() -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(descriptor >= 0, "socket() failed")
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    precondition(bound, "bind() failed")
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}
