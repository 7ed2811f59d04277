import FulcrumCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which nodes are unusable, as one event loop sees it: an immutable copy of the board's state for
/// one configuration generation, replaced (never mutated) when the board changes.
final class HealthSnapshot: Sendable {
    let generation: Int
    /// Per service and node: ejected until (monotonic nanoseconds), 0 when not ejected.
    private let ejectedUntil: [[UInt64]]
    /// Per service and node: marked down by active probes.
    private let down: [[Bool]]
    /// Per service: whether any node is ejected or down in this snapshot (fast path when not).
    let hasUnusable: [Bool]

    init(generation: Int, ejectedUntil: [[UInt64]], down: [[Bool]]) {
        self.generation = generation
        self.ejectedUntil = ejectedUntil
        self.down = down
        self.hasUnusable = zip(ejectedUntil, down).map { ejected, down in ejected.contains { $0 > 0 } || down.contains(true) }
    }

    static func empty(for runtime: RuntimeConfig) -> HealthSnapshot {
        let shape = runtime.config.services.map { Array(repeating: 0 as UInt64, count: $0.nodes.count) }
        return HealthSnapshot(generation: runtime.generation, ejectedUntil: shape, down: shape.map { $0.map { _ in false } })
    }

    /// Whether the node is down (probes) or ejected (passive health) at `now`.
    func isUnusable(service: Int, node: Int, now: UInt64) -> Bool {
        down[service][node] || ejectedUntil[service][node] > now
    }
}

/// The one place that decides node health for every event loop. Loops count failure streaks on
/// their own traffic and report a node when its streak reaches the service's threshold; the board
/// applies the ejection policy (growing ejection time, the cap on ejected nodes). Active probe
/// results arrive here too and move each node's ``ProbeHealth``. Every change is published to all
/// loops as a new snapshot. Reports are rare (one per streak or probe), so the lock is off the
/// request path.
final class HealthBoard: Sendable {
    private struct State {
        var runtime: RuntimeConfig
        /// Per service: the ejection bookkeeping (each report counts as one strike).
        var detections: [OutlierDetection?]
        var ejectedUntil: [[UInt64]]
        var probes: [[ProbeHealth]]
        /// The last probe results per `service/node` name, newest last (kept across reloads).
        var probeHistory: [String: [ProbeRecord]]

        var snapshot: HealthSnapshot {
            HealthSnapshot(generation: runtime.generation, ejectedUntil: ejectedUntil, down: probes.map { $0.map { !$0.isUp } })
        }
    }

    private let state: NIOLockedValueBox<State>
    private let logger: Logger
    private let publish: @Sendable (HealthSnapshot) -> Void

    init(runtime: RuntimeConfig, logger: Logger, publish: @escaping @Sendable (HealthSnapshot) -> Void) {
        self.logger = logger
        self.publish = publish
        self.state = NIOLockedValueBox(Self.makeState(runtime, carrying: nil))
    }

    /// Follows a new configuration (see ``makeState(_:carrying:)`` for what carries over). Called
    /// before the loops take the configuration, which then install ``snapshot(for:)``: had they
    /// taken it first, they would have served it for a moment with every node up.
    func apply(_ runtime: RuntimeConfig) {
        state.withLockedValue { state in state = Self.makeState(runtime, carrying: state) }
    }

    /// The current snapshot, if the board follows configuration `generation` (read on a reload,
    /// not per request).
    func snapshot(for generation: Int) -> HealthSnapshot? {
        state.withLockedValue { state in state.runtime.generation == generation ? state.snapshot : nil }
    }

    /// A loop saw `consecutive_failures` failures in a row from a node.
    func reportFailureStreak(generation: Int, service: Int, node: Int, now: UInt64) {
        let outcome: (HealthSnapshot, OutlierDetection.Event, String, String)? = state.withLockedValue { state in
            guard state.runtime.generation == generation, var detection = state.detections[service] else { return nil }
            guard let event = detection.recordFailure(node, now: now) else { return nil }
            state.detections[service] = detection
            if case .ejected(_, let until, _) = event { state.ejectedUntil[service][node] = until }
            let config = state.runtime.config.services[service]
            return (state.snapshot, event, config.name, config.nodes[node].name)
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

    /// Per service and node: up according to probes, and seconds of ejection left (nil when none).
    func nodeHealth(now: UInt64) -> (generation: Int, nodes: [[(up: Bool, ejectedFor: Double?)]]) {
        state.withLockedValue { state in
            let nodes = zip(state.probes, state.ejectedUntil).map { probes, ejected in
                zip(probes, ejected).map { probe, until in (up: probe.isUp, ejectedFor: until > now ? Double(until - now) / 1e9 : nil) }
            }
            return (state.runtime.generation, nodes)
        }
    }

    /// The last active probe results of a node, oldest first.
    func probeHistory(service: String, node: String) -> [ProbeRecord] {
        state.withLockedValue { $0.probeHistory["\(service)/\(node)"] ?? [] }
    }

    /// Records one active probe result for a node named in the current configuration.
    func recordProbe(service serviceName: String, node nodeName: String, success: Bool, detail: String) {
        let change: (HealthSnapshot, String)? = state.withLockedValue { state in
            let services = state.runtime.config.services
            guard let service = services.firstIndex(where: { $0.name == serviceName }),
                let node = services[service].nodeIndex(named: nodeName),
                let check = services[service].healthCheck
            else { return nil }
            var message: String? = nil
            switch state.probes[service][node].record(success: success, thresholds: check.thresholds) {
            case .wentDown: message = "node down"
            case .cameUp: message = "node up"
            case nil: break
            }
            if success, state.ejectedUntil[service][node] > 0 {
                state.detections[service]?.reinstate(node)
                state.ejectedUntil[service][node] = 0
                message = message ?? "node reinstated by a successful probe"
            }
            var history = state.probeHistory["\(serviceName)/\(nodeName)", default: []]
            history.append(ProbeRecord(time: ProbeRecord.wallClockNow(), success: success, detail: detail))
            if history.count > ProbeRecord.kept { history.removeFirst(history.count - ProbeRecord.kept) }
            state.probeHistory["\(serviceName)/\(nodeName)"] = history
            return message.map { (state.snapshot, $0) }
        }
        guard let (snapshot, message) = change else { return }
        logger.warning("\(message)", metadata: ["service": "\(serviceName)", "node": "\(nodeName)", "reason": "\(detail)"])
        publish(snapshot)
    }

    /// The board's state for `runtime`. Health belongs to a node's identity (its service's name,
    /// its own name, host and port): a node that keeps it keeps its probe state, ejection and
    /// ejection count through any change, to its service's node list or its health policies;
    /// a new node starts up and clean. Before, any change to a service forgot the health of all
    /// its nodes, and a node that was down took traffic again after a reload.
    private static func makeState(_ runtime: RuntimeConfig, carrying previous: State?) -> State {
        var detections: [OutlierDetection?] = []
        var ejectedUntil: [[UInt64]] = []
        var probes: [[ProbeHealth]] = []
        for service in runtime.config.services {
            let oldIndex = previous?.runtime.config.services.firstIndex { $0.name == service.name }
            let oldNodes = oldIndex.map { previous!.runtime.config.services[$0].nodes } ?? []
            // for each node, its index in the previous state when it is the same node
            let carried: [Int?] = service.nodes.map { node in
                oldNodes.firstIndex { $0.name == node.name && $0.host == node.host && $0.port == node.port }
            }
            let passivePolicy = service.passiveHealth.map { health in
                var policy = health.policy
                policy.consecutiveFailures = 1  // loops count the streaks; each report is one strike
                return policy
            }
            if let previous, let oldIndex {
                probes.append(carried.map { old in
                    guard service.healthCheck != nil, let old else { return .up(failures: 0) }
                    return previous.probes[oldIndex][old]
                })
                ejectedUntil.append(carried.map { old in
                    guard passivePolicy != nil, let old else { return 0 }
                    return previous.ejectedUntil[oldIndex][old]
                })
                detections.append(passivePolicy.map { policy in
                    previous.detections[oldIndex]?.carried(to: carried, policy: policy)
                        ?? OutlierDetection(nodeCount: service.nodes.count, policy: policy)
                })
            } else {
                probes.append(Array(repeating: .up(failures: 0), count: service.nodes.count))
                ejectedUntil.append(Array(repeating: 0, count: service.nodes.count))
                detections.append(passivePolicy.map { OutlierDetection(nodeCount: service.nodes.count, policy: $0) })
            }
        }
        let names = Set(runtime.config.services.flatMap { service in service.nodes.map { "\(service.name)/\($0.name)" } })
        let history = previous?.probeHistory.filter { names.contains($0.key) } ?? [:]
        return State(runtime: runtime, detections: detections, ejectedUntil: ejectedUntil, probes: probes, probeHistory: history)
    }
}

/// One active health probe result, for the node's history.
public struct ProbeRecord: Sendable, Equatable {
    /// Results kept per node.
    public static let kept = 20

    /// Seconds since 1970.
    public var time: Double
    public var success: Bool
    /// What the probe saw (status, timeout, refused connection...).
    public var detail: String

    static func wallClockNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
