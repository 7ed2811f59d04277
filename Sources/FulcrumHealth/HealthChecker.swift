import FulcrumCore
import FulcrumTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs the active health checks of every service that has one: one probe loop per node, started
/// as soon as the service is configured, spread in time (each interval is shifted by up to ±10 %,
/// and first probes by up to one interval), with at most `maxConcurrentProbes` probes in flight.
/// ``apply(_:nodeTLS:)`` follows configuration changes: new nodes are probed, removed ones forgotten,
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
    private struct ProbeLoop {
        var target: ProbeTarget
        /// The node's TLS as the configuration in force compiled it (the proxy's own), swapped by
        /// every ``HealthChecker/apply(_:nodeTLS:)`` so that a re-read CA file reaches the probes.
        var tls: NIOLockedValueBox<UpstreamTLS?>
        var task: Task<Void, Never>
    }

    private let loops = NIOLockedValueBox<[ProbeKey: ProbeLoop]>([:])

    public init(group: EventLoopGroup, maxConcurrentProbes: Int = 64, report: @escaping Report) {
        self.group = group
        self.report = report
        self.slots = ProbeSlots(limit: maxConcurrentProbes)
    }

    /// Starts, keeps, restarts or stops probe loops to match `config`. `nodeTLS` is the TLS the
    /// data plane compiled for each node with `tls`, by service and node index (the compiled
    /// configuration's `nodeTLS`): probes speak TLS exactly as requests do, and a TLS node
    /// without it is reported failing rather than probed in plaintext.
    public func apply(_ config: FulcrumConfig, nodeTLS: [[UpstreamTLS?]]) {
        var wanted: [ProbeKey: (target: ProbeTarget, tls: UpstreamTLS?)] = [:]
        for (s, service) in config.services.enumerated() {
            guard let check = service.healthCheck else { continue }
            for (n, node) in service.nodes.enumerated() {
                let tls = nodeTLS.indices.contains(s) && nodeTLS[s].indices.contains(n) ? nodeTLS[s][n] : nil
                wanted[ProbeKey(service: service.name, node: node.name)] =
                    (ProbeTarget(check: check, host: node.host, port: node.port, tls: node.tls), tls)
            }
        }
        loops.withLockedValue { loops in
            for (key, running) in loops where wanted[key]?.target != running.target {
                running.task.cancel()
                loops[key] = nil
            }
            for (key, wanted) in wanted {
                if let running = loops[key] {
                    running.tls.withLockedValue { $0 = wanted.tls }
                } else {
                    let tls = NIOLockedValueBox(wanted.tls)
                    loops[key] = ProbeLoop(target: wanted.target, tls: tls, task: startLoop(key, wanted.target, tls: tls))
                }
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

    private func startLoop(_ key: ProbeKey, _ target: ProbeTarget, tls: NIOLockedValueBox<UpstreamTLS?>) -> Task<Void, Never> {
        let group = self.group
        let report = self.report
        let slots = self.slots
        return Task {
            let interval = target.check.interval.nanoseconds
            try? await Task.sleep(for: .nanoseconds(Int64.random(in: 0...max(0, interval))))
            while !Task.isCancelled {
                let result: ProbeResult
                do {
                    let address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)
                    let context = tls.withLockedValue { $0 }
                    if target.tls != nil, context == nil {
                        result = ProbeResult(success: false, detail: "no TLS context compiled for the node")
                    } else {
                        result = await slots.withSlot {
                            await HealthProbe.run(
                                target.check, address: address, nodeHost: target.host, nodePort: target.port, tls: context, group: group)
                        }
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
