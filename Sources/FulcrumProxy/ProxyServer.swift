import Atomics
import FulcrumCore
import FulcrumTLS
import Logging
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// The data plane: listeners, one ``LoopContext`` per event loop, configuration reloads and
/// graceful drain. Client connections are accepted on every loop; each exchange stays on the
/// loop that accepted its client.
public final class ProxyServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let contexts: [NIOLoopBound<LoopContext>]
    private let serverChannels: NIOLockedValueBox<[Channel]>
    private let current: NIOLockedValueBox<RuntimeConfig>
    private let logs: ProxyLogs
    private let healthBoard: HealthBoard
    private let banBoard: BanBoard
    private let connectionLimit: ConnectionLimit
    /// TLS of the listeners with `tls`, by `address:port`: a reload gives them its certificates.
    private let terminations: NIOLockedValueBox<[String: TLSTermination]>

    /// Creates the event loops (``FulcrumConfig/workers`` threads, default one per core).
    public init(runtime: RuntimeConfig, logs: ProxyLogs = ProxyLogs()) throws {
        let threads = runtime.config.workers ?? System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.group = group
        self.logs = logs
        let connectionLimit = ConnectionLimit(
            limit: runtime.config.maxConnections ?? ConnectionLimit.automatic(), perClient: runtime.config.maxConnectionsPerClient,
            logger: logs.events)
        self.connectionLimit = connectionLimit
        let published = NIOLockedValueBox<[NIOLoopBound<LoopContext>]>([])
        let board = HealthBoard(runtime: runtime, logger: logs.events) { snapshot in
            for bound in published.withLockedValue({ $0 }) {
                bound.eventLoop.execute { bound.value.policy.install(snapshot) }
            }
        }
        self.healthBoard = board
        let bans = BanBoard { change in
            for bound in published.withLockedValue({ $0 }) {
                bound.eventLoop.execute { bound.value.policy.access.apply(change) }
            }
        }
        self.banBoard = bans
        let contexts = try group.makeIterator().map { loop in
            try loop.submit {
                NIOLoopBound(LoopContext(
                    eventLoop: loop, runtime: runtime.forOneLoop(), logs: logs, healthBoard: board, banBoard: bans,
                    connectionLimit: connectionLimit), eventLoop: loop)
            }.wait()
        }
        published.withLockedValue { $0 = contexts }
        self.contexts = contexts
        self.serverChannels = NIOLockedValueBox([])
        self.terminations = NIOLockedValueBox([:])
        self.current = NIOLockedValueBox(runtime)
    }

    /// The configuration currently served.
    public var runtime: RuntimeConfig { current.withLockedValue { $0 } }

    /// Binds every listener of the configuration and returns the bound addresses.
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        var bound: [SocketAddress] = []
        let runtime = self.runtime
        for (index, listener) in runtime.config.listeners.enumerated() {
            let address = listener.endpoint
            var termination: TLSTermination?
            if let certificates = runtime.listenerCertificates[index] {
                do { termination = try TLSTermination(certificates) } catch {
                    throw ListenError(address: address, underlying: error)
                }
                terminations.withLockedValue { $0[address] = termination }
            }
            let channel: Channel
            do {
                channel = try await makeBootstrap(listener, tls: termination).bind(host: listener.address, port: listener.port).get()
            } catch {
                throw ListenError(address: address, underlying: error)
            }
            serverChannels.withLockedValue { $0.append(channel) }
            connectionLimit.watch(channel)
            if let address = channel.localAddress { bound.append(address) }
            logs.events.info("listening", metadata: [
                "address": "\(listener.address):\(channel.localAddress?.port ?? listener.port)",
                "tls": "\(termination != nil)",
                "redirect_to_https": "\(listener.redirectToHTTPS.map(String.init) ?? "-")",
                "protocols": "\(listener.tls.map { $0.alpn.map(\.rawValue).joined(separator: ",") } ?? (listener.h2c ? "h2c,http/1.1" : "http/1.1"))",
                "max_connections": "\(connectionLimit.cap)",
            ])
        }
        if !terminations.withLockedValue({ $0.isEmpty }) {
            logExpiringCertificates()
            // a warning each day from 30 days before a certificate expires, as long as it is served
            let task = group.next().scheduleRepeatedTask(initialDelay: .hours(24), delay: .hours(24)) { [self] _ in
                logExpiringCertificates()
            }
            expiryWatch.withLockedValue { $0 = task }
        }
        return bound
    }

    private let expiryWatch = NIOLockedValueBox<RepeatedTask?>(nil)

    /// The certificates every TLS listener serves now, by listener (`address:port`).
    public func servedCertificates() -> [(listener: String, certificate: ServedCertificate)] {
        terminations.withLockedValue { $0 }.sorted { $0.key < $1.key }.flatMap { listener, termination in
            termination.served.certificates.map { (listener, $0) }
        }
    }

    private func logExpiringCertificates() {
        let now = Int64(time(nil))
        let served = terminations.withLockedValue { $0 }.sorted { $0.key < $1.key }
        for (listener, termination) in served {
            for expiring in termination.served.expiring(now: now) {
                logs.events.warning(expiring.secondsLeft <= 0 ? "certificate expired" : "certificate expires soon", metadata: [
                    "listener": "\(listener)", "certificate": "\(expiring.certificate.source)",
                    "names": "\(expiring.certificate.names.joined(separator: ","))", "days_left": "\(expiring.secondsLeft / 86_400)",
                ])
            }
        }
    }

    private func makeBootstrap(_ listener: Listener, tls: TLSTermination?) -> ServerBootstrap {
        let contexts = self.contexts
        let limit = connectionLimit
        let listening = ClientProtocols.Listening(
            overTLS: tls != nil, redirectToHTTPS: listener.redirectToHTTPS, offersHTTP1: listener.tls?.alpn.contains(.http1) ?? true)
        let h2c = listener.h2c
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(limit: limit)) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let bound = contexts.first(where: { $0.eventLoop === channel.eventLoop }) else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    let loop = bound.value
                    if tls != nil || h2c {
                        let limit = TimeAmount(loop.runtime.config.timeouts.clientHead)
                        try channel.pipeline.syncOperations.addHandler(ProtocolDeadline(limit: limit))
                    }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                        try channel.pipeline.syncOperations.addHandler(ClientProtocols.negotiationHandler(loop: loop, listening: listening))
                    } else if h2c {
                        try channel.pipeline.syncOperations.addHandler(HTTP2PrefaceSniffer(loop: loop, listening: listening))
                    } else {
                        try ClientProtocols.configureHTTP1(channel, loop: loop, listening: listening)
                    }
                }
            }
    }

    /// Reads the certificate files of every TLS listener again (SIGHUP), for certificates renewed
    /// in place: they are served from the next handshake on, and open connections keep theirs.
    /// All or nothing: when one file cannot be used, every listener keeps what it serves.
    ///
    /// - Returns: how many certificates served now differ from those served before.
    /// - Throws: ``ConfigError`` naming each certificate field that cannot be used.
    public func reloadCertificates() throws(ConfigError) -> Int {
        let runtime = self.runtime
        var loaded: [(TLSTermination, ListenerCertificates)] = []
        var issues: [ConfigIssue] = []
        for (index, listener) in runtime.config.listeners.enumerated() {
            guard let tls = listener.tls, let termination = terminations.withLockedValue({ $0[listener.endpoint] })
            else { continue }
            do {
                loaded.append((termination, try ListenerCertificates(tls, stored: runtime.storedCertificates, path: "listen[\(index)].tls")))
            } catch {
                issues.append(contentsOf: error.issues)
            }
        }
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        var changed = 0
        for (termination, certificates) in loaded {
            let before = Set(termination.served.certificates.map(\.fingerprint))
            changed += certificates.certificates.count { !before.contains($0.fingerprint) }
            do { try termination.install(certificates) } catch {
                logs.events.error("cannot apply the certificates of a listener", metadata: ["error": "\(error)"])
            }
        }
        return changed
    }

    /// Switches every event loop to `runtime`. New requests use it at once; requests in flight
    /// finish with the configuration they started with.
    public func apply(_ runtime: RuntimeConfig) {
        let previous = current.withLockedValue { current in
            defer { current = runtime }
            return current
        }
        if previous.config.listeners != runtime.config.listeners || previous.config.workers != runtime.config.workers {
            logs.events.warning("changes to listen and workers take effect after a restart; the rest is applied now")
        }
        healthBoard.apply(runtime)
        banBoard.keepBans(ofRules: Set(runtime.config.cc.map(\.name)))
        for (listener, certificates) in zip(runtime.config.listeners, runtime.listenerCertificates) {
            guard let certificates, let termination = terminations.withLockedValue({ $0[listener.endpoint] }) else { continue }
            do { try termination.install(certificates) } catch {
                logs.events.error("cannot apply the certificates of a listener", metadata: [
                    "address": "\(listener.endpoint)", "error": "\(error)",
                ])
            }
        }
        for bound in contexts {
            let copy = runtime.forOneLoop()
            bound.eventLoop.execute { bound.value.install(copy) }
        }
        connectionLimit.setLimits(runtime.config.maxConnections ?? ConnectionLimit.automatic(), perClient: runtime.config.maxConnectionsPerClient)
    }

    /// Stops accepting, lets in-flight exchanges finish (idle keep-alive connections are closed at
    /// once, busy ones after their response) and returns when every connection is closed or
    /// `timeout` has passed, whichever comes first. Returns the number of connections cut off.
    public func drain(timeout: Duration) async -> Int {
        let channels = serverChannels.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
        for bound in contexts { bound.eventLoop.execute { bound.value.drain() } }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await openConnections() == 0 { return 0 }
            try? await Task.sleep(for: .milliseconds(20))
        }
        var remaining = 0
        for bound in contexts {
            remaining += (try? await bound.eventLoop.submit { bound.value.closeAllConnections() }.get()) ?? 0
        }
        return remaining
    }

    /// The number of client connections open across all loops.
    public func openConnections() async -> Int {
        var total = 0
        for bound in contexts {
            total += (try? await bound.eventLoop.submit { bound.value.openConnectionCount }.get()) ?? 0
        }
        return total
    }

    /// Records an active health probe result (from ``FulcrumHealth``'s checker): moves the node's
    /// probe state and publishes the change to every event loop.
    public func recordProbe(service: String, node: String, success: Bool, detail: String) {
        healthBoard.recordProbe(service: service, node: node, success: success, detail: detail)
    }

    /// The last active probe results of a node, oldest first (empty without health checks).
    public func probeHistory(service: String, node: String) -> [ProbeRecord] {
        healthBoard.probeHistory(service: service, node: node)
    }

    /// What the data plane is doing now: node health, ejections, breakers, limits, requests in flight.
    public func state() async -> ProxyState {
        let runtime = self.runtime
        let config = runtime.config
        let health = healthBoard.nodeHealth(now: NIODeadline.now().uptimeNanoseconds)
        var inFlight = config.services.map { Array(repeating: 0, count: $0.nodes.count) }
        var breakers: [[String]] = config.services.map { _ in [] }
        var serviceLimits: [ProxyState.LimitState?] = config.services.map { $0.rateLimit.map { _ in .init(rejected: 0, trackedKeys: 0) } }
        var routeLimits: [ProxyState.LimitState?] = config.routes.map { $0.rateLimit.map { _ in .init(rejected: 0, trackedKeys: 0) } }
        var globalHits = Array(repeating: 0, count: config.accessRules.count)
        var serviceHits = config.services.map { Array(repeating: 0, count: $0.accessRules.count) }
        var routeHits = config.routes.map { Array(repeating: 0, count: $0.accessRules.count) }
        var ccBans = Array(repeating: 0, count: config.cc.count)
        var ccRefused = ccBans
        func add(_ counts: [Int], to total: inout [Int]) { for (index, count) in counts.enumerated() { total[index] += count } }
        for bound in contexts {
            let view = try? await bound.eventLoop.submit { () -> LoopView? in
                let policy = bound.value.policy
                guard policy.runtime.generation == runtime.generation else { return nil }  // this loop has not switched yet
                let access = policy.access
                return LoopView(
                    inFlight: policy.balancers.map(\.inFlight), breakers: policy.breakers.map { $0?.state.name },
                    serviceLimits: zip(policy.serviceLimiters, policy.serviceRejections).map { limiter, rejected in limiter.map { (rejected, $0.trackedKeys) } },
                    routeLimits: zip(policy.routeLimiters, policy.routeRejections).map { limiter, rejected in limiter.map { (rejected, $0.trackedKeys) } },
                    globalHits: access.globalHits, serviceHits: access.serviceHits, routeHits: access.routeHits,
                    ccBans: access.ccBans, ccRefused: access.ccRefused)
            }.get()
            guard let view = view ?? nil else { continue }
            add(view.globalHits, to: &globalHits)
            for index in serviceHits.indices { add(view.serviceHits[index], to: &serviceHits[index]) }
            for index in routeHits.indices { add(view.routeHits[index], to: &routeHits[index]) }
            add(view.ccBans, to: &ccBans)
            add(view.ccRefused, to: &ccRefused)
            for (s, nodes) in view.inFlight.enumerated() { for (n, count) in nodes.enumerated() { inFlight[s][n] += count } }
            for (s, name) in view.breakers.enumerated() { if let name { breakers[s].append(name) } }
            for (s, counts) in view.serviceLimits.enumerated() {
                if let (rejected, keys) = counts { serviceLimits[s]?.rejected += rejected; serviceLimits[s]?.trackedKeys += keys }
            }
            for (r, counts) in view.routeLimits.enumerated() {
                if let (rejected, keys) = counts { routeLimits[r]?.rejected += rejected; routeLimits[r]?.trackedKeys += keys }
            }
        }
        let sameGeneration = health.generation == runtime.generation
        let services = config.services.enumerated().map { s, service in
            ProxyState.ServiceState(
                name: service.name,
                nodes: service.nodes.enumerated().map { n, node in
                    ProxyState.NodeState(
                        name: node.name, up: sameGeneration ? health.nodes[s][n].up : true,
                        ejectedFor: sameGeneration ? health.nodes[s][n].ejectedFor : nil, inFlight: inFlight[s][n])
                },
                breakers: breakers[s], rateLimit: serviceLimits[s],
                limitedInFlight: runtime.serviceInFlight[s]?.load(ordering: .relaxed))
        }
        let routes = config.routes.enumerated().map { r, route in
            ProxyState.RouteState(name: route.name, rateLimit: routeLimits[r], limitedInFlight: runtime.routeInFlight[r]?.load(ordering: .relaxed))
        }
        func ruleStates(_ rules: [AccessRule], _ hits: [Int], _ scope: String) -> [ProxyState.AccessRuleState] {
            zip(rules, hits).map { rule, hits in
                ProxyState.AccessRuleState(
                    name: rule.name, scope: scope, action: rule.effect == .allow ? "allow" : rule.action.rawValue, hits: hits)
            }
        }
        var state = ProxyState(generation: runtime.generation, services: services, routes: routes)
        state.accessRules = ruleStates(config.accessRules, globalHits, "global")
            + zip(config.services, serviceHits).flatMap { ruleStates($0.accessRules, $1, "service \($0.name)") }
            + zip(config.routes, routeHits).flatMap { ruleStates($0.accessRules, $1, "route \($0.name)") }
        state.cc = config.cc.enumerated().map { index, rule in ProxyState.CCRuleState(name: rule.name, bans: ccBans[index], refused: ccRefused[index]) }
        let now = NIODeadline.now().uptimeNanoseconds
        state.bans = banBoard.current(now: now).map { ban in
            ProxyState.BanState(rule: ban.key.rule, key: ban.key.key, secondsLeft: Double(ban.until - now) / 1e9)
        }
        return state
    }

    /// Lifts the ban of `key` by the CC rule `rule` on every event loop; returns whether there
    /// was one.
    public func liftBan(rule: String, key: String) -> Bool {
        banBoard.lift(BanBoard.Key(rule: rule, key: key), now: NIODeadline.now().uptimeNanoseconds)
    }

    /// Traffic by route, service and node, all event loops together: totals since start and each
    /// of the last `seconds` complete seconds (at most ``TrafficRecorder/windowSeconds``).
    public func traffic(seconds: Int) async -> TrafficReport {
        let length = min(max(seconds, 1), TrafficRecorder.windowSeconds)
        let lastComplete = Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000_000) - 1
        var report: TrafficReport?
        for bound in contexts {
            guard let part = try? await bound.eventLoop.submit({ bound.value.statistics.snapshot(endingAt: lastComplete, seconds: length) }).get()
            else { continue }
            if report == nil { report = part } else { report?.merge(part) }
        }
        return report ?? TrafficReport(seconds: length, routes: [], services: [], nodes: [])
    }

    /// One loop's part of ``state()``.
    private struct LoopView: Sendable {
        var inFlight: [[Int]]
        var breakers: [String?]
        var serviceLimits: [(Int, Int)?]
        var routeLimits: [(Int, Int)?]
        var globalHits: [Int]
        var serviceHits: [[Int]]
        var routeHits: [[Int]]
        var ccBans: [Int]
        var ccRefused: [Int]
    }

    /// Closes everything and stops the event loops.
    public func shutdown() async throws {
        expiryWatch.withLockedValue { $0?.cancel() }
        _ = await drain(timeout: .zero)
        try await group.shutdownGracefully()
    }
}

/// A listener could not be opened (address in use, not local, no permission...).
public struct ListenError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: Error

    /// The system's words for a system call's error ("Address already in use"), not NIO's
    /// description, which names the call's Swift signature and left a stray ")" in the message.
    public var description: String {
        if let error = underlying as? IOError { return "cannot listen on \(address): \(String(cString: strerror(error.errnoCode)))" }
        return "cannot listen on \(address): \(underlying)"
    }
}
