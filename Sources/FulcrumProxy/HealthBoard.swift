import FulcrumCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Which nodes are ejected, as one event loop sees it: an immutable copy of the board's state
/// for one configuration generation, replaced (never mutated) when the board changes.
final class HealthSnapshot: Sendable {
    let generation: Int
    /// Per service and node: ejected until (monotonic nanoseconds), 0 when not ejected.
    private let ejectedUntil: [[UInt64]]
    /// Per service: whether any node has ever been ejected in this snapshot (fast path when not).
    let hasEjections: [Bool]

    init(generation: Int, ejectedUntil: [[UInt64]]) {
        self.generation = generation
        self.ejectedUntil = ejectedUntil
        self.hasEjections = ejectedUntil.map { $0.contains { $0 > 0 } }
    }

    static func empty(for runtime: RuntimeConfig) -> HealthSnapshot {
        HealthSnapshot(generation: runtime.generation, ejectedUntil: runtime.config.services.map { Array(repeating: 0, count: $0.nodes.count) })
    }

    func isEjected(service: Int, node: Int, now: UInt64) -> Bool {
        ejectedUntil[service][node] > now
    }
}

/// The one place that decides ejections for every event loop. Loops count failure streaks on
/// their own traffic and report a node when its streak reaches the service's threshold; the board
/// applies the ejection policy (growing ejection time, the cap on ejected nodes) and publishes a new
/// snapshot to every loop. Reports are rare (one per streak), so the lock is off the request path.
final class HealthBoard: Sendable {
    private struct State {
        var runtime: RuntimeConfig
        /// Per service: the ejection bookkeeping (each report counts as one strike).
        var detections: [OutlierDetection?]
        var ejectedUntil: [[UInt64]]
    }

    private let state: NIOLockedValueBox<State>
    private let logger: Logger
    private let publish: @Sendable (HealthSnapshot) -> Void

    init(runtime: RuntimeConfig, logger: Logger, publish: @escaping @Sendable (HealthSnapshot) -> Void) {
        self.logger = logger
        self.publish = publish
        self.state = NIOLockedValueBox(Self.makeState(runtime, carrying: nil))
    }

    /// Follows a new configuration; ejections of nodes that keep their service, name and policy carry over.
    func apply(_ runtime: RuntimeConfig) {
        let snapshot = state.withLockedValue { state in
            state = Self.makeState(runtime, carrying: state)
            return HealthSnapshot(generation: runtime.generation, ejectedUntil: state.ejectedUntil)
        }
        publish(snapshot)
    }

    /// A loop saw `consecutive_failures` failures in a row from a node.
    func reportFailureStreak(generation: Int, service: Int, node: Int, now: UInt64) {
        let outcome: (HealthSnapshot, OutlierDetection.Event, String, String)? = state.withLockedValue { state in
            guard state.runtime.generation == generation, var detection = state.detections[service] else { return nil }
            guard let event = detection.recordFailure(node, now: now) else { return nil }
            state.detections[service] = detection
            if case .ejected(_, let until, _) = event { state.ejectedUntil[service][node] = until }
            let config = state.runtime.config.services[service]
            return (HealthSnapshot(generation: generation, ejectedUntil: state.ejectedUntil), event, config.name, config.nodes[node].name)
        }
        guard let (snapshot, event, service, node) = outcome else { return }
        switch event {
        case .ejected(_, let until, let count):
            let seconds = Double(until - now) / 1e9
            logger.warning("node ejected", metadata: [
                "service": "\(service)", "node": "\(node)", "reason": "consecutive failures",
                "for": "\(seconds)s", "ejections": "\(count)",
            ])
            publish(snapshot)
        case .ejectionCapped:
            logger.notice("node not ejected: too many nodes of the service are ejected already", metadata: [
                "service": "\(service)", "node": "\(node)",
            ])
        }
    }

    private static func makeState(_ runtime: RuntimeConfig, carrying previous: State?) -> State {
        var detections: [OutlierDetection?] = []
        var ejectedUntil: [[UInt64]] = []
        for service in runtime.config.services {
            let old = previous.flatMap { p in p.runtime.config.services.firstIndex { $0.name == service.name }.map { (p, $0) } }
            if let (p, index) = old, p.runtime.config.services[index].nodes.map(\.name) == service.nodes.map(\.name),
                p.runtime.config.services[index].passiveHealth == service.passiveHealth
            {
                detections.append(p.detections[index])
                ejectedUntil.append(p.ejectedUntil[index])
                continue
            }
            detections.append(service.passiveHealth.map { health in
                var policy = health.policy
                policy.consecutiveFailures = 1  // loops count the streaks; each report is one strike
                return OutlierDetection(nodeCount: service.nodes.count, policy: policy)
            })
            ejectedUntil.append(Array(repeating: 0, count: service.nodes.count))
        }
        return State(runtime: runtime, detections: detections, ejectedUntil: ejectedUntil)
    }
}
