import Atomics
import FulcrumCore
import FulcrumTLS
import NIOCore
import NIOHTTP1

/// A configuration compiled for the data plane: the router, node addresses resolved once, and
/// Fulcrum's own responses pre-rendered. Immutable; a reload builds a new one and every event loop
/// switches to it, while requests already in flight keep the one they started with.
public final class RuntimeConfig: Sendable {
    /// The validated configuration this was compiled from.
    public let config: FulcrumConfig
    /// The compiled routes.
    public let router: Router
    /// Node addresses per service, in configuration order.
    let nodeAddresses: [[SocketAddress]]
    /// TLS to each node with `tls` (`nil` for plaintext nodes), parallel to ``nodeAddresses``;
    /// shared with the active health checks.
    public let nodeTLS: [[UpstreamTLS?]]
    /// Increases by one with every configuration applied.
    public let generation: Int
    /// Traffic splits per route (`nil` for routes without one).
    let splits: [CompiledSplit?]
    /// The top-level access rules compiled; `nil` when there are none.
    let globalAccess: AccessRules?
    /// Access rules per service and per route; `nil` where there are none.
    let serviceAccess: [AccessRules?]
    let routeAccess: [AccessRules?]
    /// The `match` of each CC rule (`nil`: every request counts).
    let ccMatchers: [ConditionsMatcher?]
    /// The CORS policy of each route (its own, or its target service's) and of the default
    /// target; `nil` where there is none.
    let cors: [CORSPolicy?]
    let defaultCORS: CORSPolicy?
    /// The root of each route with `static`, resolved (symbolic links followed) when the
    /// configuration is compiled; `nil` for other routes.
    let staticRoots: [String?]
    /// `trusted_proxies`; `nil` when there are none.
    let trustedProxies: AddressTrie?
    /// Whether requests meet top-level access rules or CC rules before routing.
    let screensBeforeRouting: Bool
    /// Shaping per route (`nil` for a proxying route without any): what a request becomes on its
    /// way to the node, and a redirect's groups.
    let shapers: [RequestShaper?]
    /// Requests in flight per route with `max_in_flight`, shared by all event loops.
    let routeInFlight: [ManagedAtomic<Int>?]
    /// Requests in flight per service with `max_in_flight`, shared by all event loops.
    let serviceInFlight: [ManagedAtomic<Int>?]
    /// `timeouts.upstream_response`, converted once rather than per request.
    let upstreamResponseTimeout: TimeAmount
    /// The certificates of each listener with `tls`, read from their files (`nil` for plaintext
    /// listeners), in the order of ``FulcrumConfig/listeners``.
    public let listenerCertificates: [ListenerCertificates?]
    /// The ``FulcrumConfig/storedCertificates``, read from their bundles; every TLS listener
    /// serves them (and keeps serving them when SIGHUP re-reads its files).
    public let storedCertificates: [ServedCertificate]

    /// Compiles `config`, resolving every node's host name once and reading every listener's
    /// certificates.
    ///
    /// - Parameter bundles: the chains and keys of the ``FulcrumConfig/storedCertificates``, by
    ///   their ``StoredCertificateReference/chainSHA256`` (read from the store).
    /// - Throws: ``ConfigError`` naming each node whose host cannot be resolved and each
    ///   certificate or key that cannot be read or used.
    public init(config: FulcrumConfig, generation: Int, bundles: [String: CertificateBundle] = [:]) throws(ConfigError) {
        var issues: [ConfigIssue] = []
        var stored: [ServedCertificate] = []
        for reference in config.storedCertificates {
            let field = "stored_certificates.\(reference.name)"
            guard let bundle = bundles[reference.chainSHA256] else {
                issues.append(ConfigIssue(
                    path: "\(field).chain_sha256", line: nil,
                    message: "no certificate with this digest in the store (stored certificates are served with 'serve --store')"))
                continue
            }
            do {
                let certificate = try ServedCertificate(bundle: bundle, name: reference.name, certField: field, keyField: field)
                if certificate.chainSHA256 == reference.chainSHA256 { stored.append(certificate) } else {
                    issues.append(ConfigIssue(path: "\(field).chain_sha256", line: nil, message: "the stored chain does not have this digest"))
                }
            } catch {
                issues.append(contentsOf: error.issues)
            }
        }
        let storedFailed = !issues.isEmpty
        var certificates: [ListenerCertificates?] = []
        for (index, listener) in config.listeners.enumerated() {
            guard let tls = listener.tls else { certificates.append(nil); continue }
            guard !storedFailed else { certificates.append(nil); continue }  // reported once, above
            do { certificates.append(try ListenerCertificates(tls, stored: stored, path: "listen[\(index)].tls")) } catch {
                issues.append(contentsOf: error.issues)
                certificates.append(nil)
            }
        }
        var addresses: [[SocketAddress]] = []
        var nodeTLS: [[UpstreamTLS?]] = []
        for service in config.services {
            var resolved: [SocketAddress] = []
            var tlsOfNodes: [UpstreamTLS?] = []
            for (index, node) in service.nodes.enumerated() {
                if let settings = node.tls {
                    do {
                        tlsOfNodes.append(try UpstreamTLS(settings, host: node.host, path: "services.\(service.name).nodes[\(index)].tls"))
                    } catch {
                        issues.append(contentsOf: error.issues)
                        tlsOfNodes.append(nil)
                    }
                } else {
                    tlsOfNodes.append(nil)
                }
                do {
                    resolved.append(try SocketAddress.makeAddressResolvingHost(node.host, port: node.port))
                } catch {
                    issues.append(ConfigIssue(
                        path: "services.\(service.name).nodes[\(index)].host", line: nil,
                        message: "cannot resolve '\(node.host)': \(error)"))
                    resolved.append(try! SocketAddress(ipAddress: "0.0.0.0", port: node.port))
                }
            }
            addresses.append(resolved)
            nodeTLS.append(tlsOfNodes)
        }
        var staticRoots: [String?] = []
        for (index, route) in config.routes.enumerated() {
            guard case .serveFiles(let files) = route.action else { staticRoots.append(nil); continue }
            switch FileServing.resolveRoot(files.root) {
            case .success(let root): staticRoots.append(root)
            case .failure(let reason):
                issues.append(ConfigIssue(path: "routes[\(index)].static.root", line: nil, message: reason.message))
                staticRoots.append(nil)
            }
        }
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        self.staticRoots = staticRoots
        self.config = config
        self.router = Router(config: config)
        self.nodeAddresses = addresses
        self.nodeTLS = nodeTLS
        self.generation = generation
        self.splits = config.routes.map { CompiledSplit(route: $0, config: config) }
        self.globalAccess = config.accessRules.isEmpty ? nil : AccessRules(config.accessRules)
        self.serviceAccess = config.services.map { $0.accessRules.isEmpty ? nil : AccessRules($0.accessRules) }
        self.routeAccess = config.routes.map { $0.accessRules.isEmpty ? nil : AccessRules($0.accessRules) }
        self.ccMatchers = config.cc.map { $0.match.map(ConditionsMatcher.init) }
        self.cors = config.routes.map { route in route.cors ?? route.target.flatMap { config.service(named: $0.service)?.cors } }
        self.defaultCORS = config.defaultTarget.flatMap { config.service(named: $0.service)?.cors }
        var trusted = AddressTrie()
        for range in config.trustedProxies { trusted.insert(range, value: 0) }
        self.trustedProxies = trusted.isEmpty ? nil : trusted
        self.screensBeforeRouting = !config.accessRules.isEmpty || !config.cc.isEmpty
        self.shapers = config.routes.map { route in
            route.shaping.isEmpty && route.target != nil ? nil : RequestShaper(route: route)
        }
        self.routeInFlight = config.routes.map { $0.maxInFlight.map { _ in ManagedAtomic(0) } }
        self.serviceInFlight = config.services.map { $0.maxInFlight.map { _ in ManagedAtomic(0) } }
        self.upstreamResponseTimeout = TimeAmount(config.timeouts.upstreamResponse)
        self.listenerCertificates = certificates
        self.storedCertificates = stored
    }

    /// A copy for one event loop: the same configuration and compiled structures (the in-flight
    /// counters stay shared), in an object of the loop's own. Every exchange holds its loop's
    /// configuration, and with one object for all loops each of them would change its reference
    /// count several times per request, the CPU cores taking its cache line from each other.
    func forOneLoop() -> RuntimeConfig {
        RuntimeConfig(copying: self)
    }

    private init(copying other: RuntimeConfig) {
        config = other.config
        router = other.router
        nodeAddresses = other.nodeAddresses
        nodeTLS = other.nodeTLS
        generation = other.generation
        splits = other.splits
        shapers = other.shapers
        globalAccess = other.globalAccess
        serviceAccess = other.serviceAccess
        routeAccess = other.routeAccess
        ccMatchers = other.ccMatchers
        cors = other.cors
        staticRoots = other.staticRoots
        defaultCORS = other.defaultCORS
        trustedProxies = other.trustedProxies
        screensBeforeRouting = other.screensBeforeRouting
        routeInFlight = other.routeInFlight
        serviceInFlight = other.serviceInFlight
        upstreamResponseTimeout = other.upstreamResponseTimeout
        listenerCertificates = other.listenerCertificates
        storedCertificates = other.storedCertificates
    }

    /// Warnings that do not stop the configuration: certificates that expired or expire soon at
    /// `now` (seconds since 1970; see ``ListenerCertificates/expiring(now:)``).
    public func warnings(now: Int64) -> [ConfigIssue] {
        let stored = storedCertificates.compactMap { certificate -> ConfigIssue? in
            let left = certificate.notAfter - now
            guard case .stored(let name) = certificate.source, ListenerCertificates.ExpiryState(secondsLeft: left) != .valid else { return nil }
            return ListenerCertificates.expiryWarning(certificate, secondsLeft: left, field: "stored_certificates.\(name)")
        }
        return stored + listenerCertificates.enumerated().flatMap { index, certificates in
            certificates?.expiryWarnings(now: now, path: "listen[\(index)].tls") ?? []
        }
    }

    /// What tells the connections of one node from another's: its address, and how TLS is
    /// spoken to it (a node reached over TLS never gets a plaintext connection, nor one made for
    /// another name).
    func poolKey(service: Int, node: Int) -> NodePool.Key {
        NodePool.Key(address: nodeAddresses[service][node], tls: config.services[service].nodes[node].tls, host: config.services[service].nodes[node].host)
    }

    /// Takes one in-flight slot of `counter` if fewer than `limit` are taken.
    static func takeSlot(_ counter: ManagedAtomic<Int>, limit: Int) -> Bool {
        if counter.loadThenWrappingIncrement(ordering: .relaxed) < limit { return true }
        counter.wrappingDecrement(ordering: .relaxed)
        return false
    }

    /// The body and content type Fulcrum answers with for `status`: the configured page, or the
    /// status line with `detail` when there is none.
    func errorPage(for status: HTTPResponseStatus, detail: String? = nil) -> ErrorPage {
        if let page = config.errorPages[Int(status.code)] { return page }
        return ErrorPage(body: "\(status.code) \(status.reasonPhrase)\(detail.map { ": " + $0 } ?? "")\n")
    }
}
