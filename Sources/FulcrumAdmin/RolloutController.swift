import Foundation
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import Logging

/// Drives the rollouts of the active configuration: every tick it judges each unpaused rollout's
/// canary against its guard rails (figures from the data plane's statistics) and moves the split's
/// weights through the ``ConfigController``, so every step, rollback and promotion is a version
/// with an audit entry whose message carries the figures that caused it.
public actor RolloutController {
    /// What the controller last concluded for a route's rollout.
    public struct Status: Sendable {
        public var canaryWeight: Int
        public var stepSeconds: Double
        public var verdict: String
        public var canary: RolloutStep.Figures
        public var baseline: RolloutStep.Figures
    }

    private let controller: ConfigController
    private let proxy: ProxyServer
    private let logger: Logger
    /// When each route's canary got its current weight (in memory: a restart restarts the step).
    private var stepStarted: [String: (weight: Int, at: ContinuousClock.Instant)] = [:]
    private var statuses: [String: Status] = [:]

    /// Where the instances of a fleet publish their traffic, and this instance's name there: the
    /// rollout leader judges the fleet's summed traffic (`nil`: this instance's own).
    private let fleet: (store: any ConfigStore, instance: String)?

    public init(
        controller: ConfigController, proxy: ProxyServer, fleet: (store: any ConfigStore, instance: String)? = nil,
        logger: Logger = Logger(label: "fulcrum.rollout")
    ) {
        self.controller = controller
        self.proxy = proxy
        self.fleet = fleet
        self.logger = logger
    }

    /// Ticks every `interval` until the task is cancelled.
    public func run(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await tick()
            try? await Task.sleep(for: interval)
        }
    }

    /// The last conclusion for a route's rollout.
    public func status(route: String) -> Status? { statuses[route] }

    /// Judges every rollout once.
    public func tick() async {
        // the configuration the data plane serves, validated when it was applied: not parsed
        // again from the stored document on every tick
        let config = proxy.runtime.config
        let now = ContinuousClock.now
        var traffic: (seconds: Int, byKey: [String: TrafficSnapshot])?
        for route in config.routes {
            guard let split = route.split, let rollout = split.rollout,
                let canaryIndex = split.targets.firstIndex(where: { $0.name == rollout.canary })
            else {
                stepStarted[route.name] = nil
                statuses[route.name] = nil
                continue
            }
            let weight = split.targets[canaryIndex].weight
            if stepStarted[route.name]?.weight != weight { stepStarted[route.name] = (weight, now) }
            let heldFor = now - (stepStarted[route.name]?.at ?? now)
            let seconds = min(max(Int(heldFor.components.seconds), 1), TrafficRecorder.windowSeconds)
            if traffic?.seconds != seconds { traffic = await self.traffic(seconds: seconds, config: config) }
            let canary = Self.figures(split.targets[canaryIndex], config: config, traffic: traffic!)
            let baseline = Self.figures(split.targets[1 - canaryIndex], config: config, traffic: traffic!)
            let step = RolloutStep.decide(rollout, canaryWeight: weight, heldFor: heldFor, canary: canary, baseline: baseline)
            var verdict = ""
            switch step {
            case .hold(let why):
                verdict = why
            case .advance(let next, let why):
                verdict = "advanced to \(next) %: \(why)"
                await apply(route: route.name, message: "rollout of \(rollout.canary) on route \(route.name): \(next) % — \(why)") { document throws(AdminError) in
                    try RolloutEdit.setCanaryWeight(next, route: route.name, in: document)
                }
            case .promote(let why):
                verdict = "promoted: \(why)"
                await apply(route: route.name, message: "rollout of \(rollout.canary) on route \(route.name): promoted — \(why)") { document throws(AdminError) in
                    try RolloutEdit.finish(route: route.name, keep: .canary, in: document)
                }
            case .rollBack(let why):
                verdict = "rolled back to 0 % and paused: \(why)"
                logger.warning("rollout rolled back", metadata: ["route": "\(route.name)", "reason": "\(why)"])
                await apply(route: route.name, urgent: true, message: "rollout of \(rollout.canary) on route \(route.name): rolled back to 0 % — \(why)") { document throws(AdminError) in
                    var edited = try RolloutEdit.setCanaryWeight(0, route: route.name, in: document)
                    edited = try RolloutEdit.setPaused(true, route: route.name, in: edited)
                    return edited
                }
            }
            statuses[route.name] = Status(canaryWeight: weight, stepSeconds: Double(heldFor.components.seconds), verdict: verdict, canary: canary, baseline: baseline)
        }
    }

    private func apply(route: String, urgent: Bool = false, message: String, edit: @Sendable (ConfigDocument) throws(AdminError) -> ConfigDocument) async {
        let request = ConfigController.ChangeRequest(
            actor: "rollout", client: "-", source: .api, operation: "rollout", target: "routes/\(route)", message: message, expected: nil)
        do {
            _ = try await controller.change(request, urgent: urgent, edit: edit)
        } catch {
            logger.error("rollout change refused", metadata: ["route": "\(route)", "error": "\(error)"])
        }
    }

    /// The key of a service's traffic, and of a node's, as instances publish them.
    static func serviceKey(_ service: String) -> String { "service:\(service)" }
    static func nodeKey(service: String, node: String) -> String { "node:\(service)/\(node)" }

    /// The traffic keys of a rollout target: its service, or each of its tagged nodes.
    static func keys(_ target: TrafficSplit.Target, config: FulcrumConfig) -> [String] {
        if target.tags.isEmpty { return [serviceKey(target.service)] }
        let nodes = config.service(named: target.service)?.nodes.filter { target.tags.allSatisfy($0.tags.contains) } ?? []
        return nodes.map { nodeKey(service: target.service, node: $0.name) }
    }

    /// The keys of every target of every rollout in `config`.
    static func rolloutKeys(_ config: FulcrumConfig) -> [String] {
        config.routes.flatMap { route -> [String] in
            guard let split = route.split, split.rollout != nil else { return [] }
            return split.targets.flatMap { keys($0, config: config) }
        }
    }

    /// This instance's traffic over the last `seconds`, by key.
    private func localTraffic(seconds: Int) async -> [String: TrafficSnapshot] {
        let report = await proxy.traffic(seconds: seconds)
        var byKey: [String: TrafficSnapshot] = [:]
        for entry in report.services { byKey[Self.serviceKey(entry.name)] = entry.traffic }
        for entry in report.nodes { byKey[Self.nodeKey(service: entry.service ?? "", node: entry.name)] = entry.traffic }
        return byKey
    }

    /// The traffic a rollout is judged on: the fleet's, summed from what every instance published
    /// (the last two seconds left out: others may not have published them yet), or this
    /// instance's own without a fleet or when the store cannot be read.
    private func traffic(seconds: Int, config: FulcrumConfig) async -> (seconds: Int, byKey: [String: TrafficSnapshot]) {
        guard let fleet else { return (seconds, await localTraffic(seconds: seconds)) }
        let end = Int64(Date().timeIntervalSince1970) - 2
        let since = end - Int64(seconds) + 1
        let rows: [TrafficSecond]
        do {
            rows = try await fleet.store.fleetTraffic(keys: Self.rolloutKeys(config), since: since)
        } catch {
            logger.warning("cannot read the fleet's traffic; judging this instance's", metadata: ["error": "\(error)"])
            return (seconds, await localTraffic(seconds: seconds))
        }
        var counters: [String: [[Int32]]] = [:]
        for row in rows where row.second <= end {
            counters[row.key, default: Array(repeating: [], count: seconds)][Int(row.second - since)] = row.counters
        }
        return (seconds, counters.mapValues { TrafficSnapshot(endSecond: end, secondsCounters: $0) })
    }

    /// Publishes this instance's traffic of the rollouts' targets, second by second, until
    /// cancelled: what the leader sums. Every instance of a fleet runs it.
    public func publishTraffic() async {
        guard let fleet else { return }
        while (try? await Task.sleep(for: .seconds(1))) != nil {
            let keys = Self.rolloutKeys(proxy.runtime.config)
            guard !keys.isEmpty else { continue }
            let local = await localTraffic(seconds: 3)
            let end = Int64(Date().timeIntervalSince1970) - 1
            var seconds: [TrafficSecond] = []
            for key in keys {
                guard let snapshot = local[key] else { continue }
                for (offset, slot) in snapshot.secondsCounters.enumerated() where slot.contains(where: { $0 != 0 }) {
                    seconds.append(TrafficSecond(key: key, second: end - Int64(snapshot.seconds - 1 - offset), counters: slot))
                }
            }
            do {
                try await fleet.store.publishTraffic(instance: fleet.instance, seconds)
            } catch {
                logger.debug("cannot publish traffic to the store", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A target's figures over the window: its service's, or its tagged nodes' together.
    static func figures(
        _ target: TrafficSplit.Target, config: FulcrumConfig, traffic: (seconds: Int, byKey: [String: TrafficSnapshot])
    ) -> RolloutStep.Figures {
        let snapshots = keys(target, config: config).compactMap { traffic.byKey[$0] }
        guard var merged = snapshots.first else { return RolloutStep.Figures(requests: 0, errorRatio: 0, p99Microseconds: nil) }
        for snapshot in snapshots.dropFirst() { merged.merge(snapshot) }
        let summary = merged.windowSummary
        return RolloutStep.Figures(requests: summary.total, errorRatio: summary.errorRatio, p99Microseconds: summary.p99Microseconds)
    }
}

/// Edits of a route's split for rollouts, on the configuration document.
enum RolloutEdit {
    enum Side { case canary, baseline }

    /// The route's split and the indices of its canary and baseline targets.
    private static func locate(_ route: String, _ document: ConfigDocument) throws(AdminError) -> (route: ConfigDocument, canary: Int, baseline: Int) {
        let item = try NamedCollection.routes.item(route, in: document)
        guard let split = item["split"], let canaryName = split["rollout"]?["canary"]?.stringValue else {
            throw .notFound("route '\(route)' has no rollout")
        }
        let targets = split["targets"]?.items ?? []
        func name(_ target: ConfigDocument) -> String {
            target["name"]?.stringValue
                ?? TrafficSplit.Target.defaultName(
                    service: target["service"]?.stringValue ?? "", tags: target["tags"]?.items.compactMap(\.stringValue) ?? [])
        }
        guard targets.count == 2, let canary = targets.firstIndex(where: { name($0) == canaryName }) else {
            throw .badRequest("the rollout of route '\(route)' needs two targets, one of them '\(canaryName)'")
        }
        return (item, canary, 1 - canary)
    }

    static func setCanaryWeight(_ weight: Int, route: String, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        let (item, canary, baseline) = try locate(route, document)
        var split = item["split"]!
        var targets = split["targets"]!.items
        targets[canary]["weight"] = .int(weight)
        targets[baseline]["weight"] = .int(100 - weight)
        split["targets"] = .list(targets)
        var edited = item
        edited["split"] = split
        return try NamedCollection.routes.replacing(route, with: edited, in: document)
    }

    static func setPaused(_ paused: Bool, route: String, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        let (item, _, _) = try locate(route, document)
        var edited = item
        edited.setValue(paused ? .bool(true) : nil, at: ["split", "rollout", "paused"])
        return try NamedCollection.routes.replacing(route, with: edited, in: document)
    }

    /// Ends the rollout keeping one side: the route's target becomes that side's service (a
    /// tagged side stays a split at 100 % without the rollout, since a route alone cannot select
    /// nodes by tag).
    static func finish(route: String, keep side: Side, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        let (item, canary, baseline) = try locate(route, document)
        let kept = side == .canary ? canary : baseline
        let targets = item["split"]!["targets"]!.items
        var edited = item
        if targets[kept]["tags"]?.items.isEmpty ?? true {
            edited["split"] = nil
            edited["service"] = targets[kept]["service"]
        } else {
            var split = item["split"]!
            var weighted = targets
            weighted[kept]["weight"] = .int(100)
            weighted[1 - kept]["weight"] = .int(0)
            split["targets"] = .list(weighted)
            split["rollout"] = nil
            edited["split"] = split
        }
        return try NamedCollection.routes.replacing(route, with: edited, in: document)
    }
}
