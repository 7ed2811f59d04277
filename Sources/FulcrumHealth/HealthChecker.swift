import FulcrumCore
import FulcrumTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs the active health checks of every service that has one: one probe loop per node, started
/// as soon as the service is configured, spread in time (each interval is shifted by up to ±10 %,
/// and first probes by up to one interval), with at most `maxConcurrentProbes` probes in flight.
/// ``apply(_:)`` follows configuration changes: new nodes are probed, removed ones forgotten,
/// changed settings restart that node's loop; unchanged loops keep running.
public final class HealthChecker: Sendable {
    /// Receives every probe result.
    public typealias Report = @Sendable (_ service: String, _ node: String, _ result: ProbeResult) -> Void

    private struct ProbeKey: Hashable {
        var service: String
        var node: String
    }

    private struct ProbeTarget: Equatable {
        var check: ActiveHealthCheck
        var host: String
        var port: Int
        var tls: NodeTLS?
    }

    private let group: EventLoopGroup
    private let report: Report
    private let slots: ProbeSlots
    private let loops = NIOLockedValueBox<[ProbeKey: (target: ProbeTarget, task: Task<Void, Never>)]>([:])

    public init(group: EventLoopGroup, maxConcurrentProbes: Int = 64, report: @escaping Report) {
        self.group = group
        self.report = report
        self.slots = ProbeSlots(limit: maxConcurrentProbes)
    }

    /// Starts, keeps, restarts or stops probe loops to match `config`.
    public func apply(_ config: FulcrumConfig) {
        var wanted: [ProbeKey: ProbeTarget] = [:]
        for service in config.services {
            guard let check = service.healthCheck else { continue }
            for node in service.nodes {
                wanted[ProbeKey(service: service.name, node: node.name)] = ProbeTarget(check: check, host: node.host, port: node.port, tls: node.tls)
            }
        }
        loops.withLockedValue { loops in
            for (key, running) in loops where wanted[key] != running.target {
                running.task.cancel()
                loops[key] = nil
            }
            for (key, target) in wanted where loops[key] == nil {
                loops[key] = (target, startLoop(key, target))
            }
        }
    }

    /// The number of nodes being probed.
    public var probedNodes: Int { loops.withLockedValue { $0.count } }

    /// Stops every probe loop.
    public func stop() {
        loops.withLockedValue { loops in
            for running in loops.values { running.task.cancel() }
            loops.removeAll()
        }
    }

    private func startLoop(_ key: ProbeKey, _ target: ProbeTarget) -> Task<Void, Never> {
        let group = self.group
        let report = self.report
        let slots = self.slots
        return Task {
            let interval = target.check.interval.nanoseconds
            // once per loop: a change of the node's TLS settings restarts its loop
            let tls = Result<UpstreamTLS?, ConfigError> { () throws(ConfigError) in
                try target.tls.map { settings throws(ConfigError) in try UpstreamTLS(settings, host: target.host, path: "tls") }
            }
            try? await Task.sleep(for: .nanoseconds(Int64.random(in: 0...max(0, interval))))
            while !Task.isCancelled {
                let result: ProbeResult
                do {
                    let address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)
                    switch tls {
                    case .success(let tls):
                        result = await slots.withSlot {
                            await HealthProbe.run(
                                target.check, address: address, nodeHost: target.host, nodePort: target.port, tls: tls, group: group)
                        }
                    case .failure(let error):
                        result = ProbeResult(success: false, detail: "TLS settings unusable: \(error)")
                    }
                } catch {
                    result = ProbeResult(success: false, detail: "cannot resolve \(target.host): \(error)")
                }
                if Task.isCancelled { return }
                report(key.service, key.node, result)
                let jitter = interval / 10
                try? await Task.sleep(for: .nanoseconds(interval + Int64.random(in: -jitter...jitter)))
            }
        }
    }
}

/// Bounds the number of probes in flight; waiters are served in arrival order.
actor ProbeSlots {
    private let limit: Int
    private var inUse = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    func withSlot<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        if inUse >= limit {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            inUse += 1
        }
        defer { release() }
        return await body()
    }

    private func release() {
        if waiters.isEmpty {
            inUse -= 1
        } else {
            waiters.removeFirst().resume()  // the slot passes straight to the next waiter
        }
    }
}
