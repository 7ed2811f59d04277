/// The state of one node as active probes see it. A node starts `up` (unlike the system Fulcrum
/// replaces, where every node started offline until probed): configuration is trusted until a
/// probe proves it wrong.
public enum ProbeHealth: Sendable, Equatable {
    /// Serving; `failures` counts consecutive failed probes.
    case up(failures: Int)
    /// Not serving; `successes` counts consecutive successful probes.
    case down(successes: Int)

    /// The consecutive-result thresholds of a health check.
    public struct Thresholds: Sendable, Equatable {
        /// Consecutive successes that bring a down node up.
        public var healthy: Int
        /// Consecutive failures that take an up node down.
        public var unhealthy: Int

        public init(healthy: Int = 2, unhealthy: Int = 3) {
            precondition(healthy >= 1 && unhealthy >= 1, "thresholds are at least 1")
            self.healthy = healthy
            self.unhealthy = unhealthy
        }
    }

    /// A change of state caused by a probe result.
    public enum Transition: Sendable, Equatable {
        case wentDown
        case cameUp
    }

    public var isUp: Bool {
        if case .up = self { return true }
        return false
    }

    /// Records one probe result and returns the transition it caused, if any.
    public mutating func record(success: Bool, thresholds: Thresholds) -> Transition? {
        switch (self, success) {
        case (.up, true):
            self = .up(failures: 0)
            return nil
        case (.up(let failures), false):
            if failures + 1 >= thresholds.unhealthy {
                self = .down(successes: 0)
                return .wentDown
            }
            self = .up(failures: failures + 1)
            return nil
        case (.down(let successes), true):
            if successes + 1 >= thresholds.healthy {
                self = .up(failures: 0)
                return .cameUp
            }
            self = .down(successes: successes + 1)
            return nil
        case (.down, false):
            self = .down(successes: 0)
            return nil
        }
    }
}
