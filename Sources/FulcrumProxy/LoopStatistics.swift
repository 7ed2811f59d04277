import FulcrumCore

/// One event loop's traffic recorders: per route (plus the default target and requests no route
/// took), per service and per node. Indexed like the configuration in use, so recording is an
/// array access; a new configuration keeps the history of everything whose name it keeps.
struct LoopStatistics {
    private(set) var routes: [TrafficRecorder]
    private(set) var services: [TrafficRecorder]
    private(set) var nodes: [[TrafficRecorder]]
    /// Failed connection attempts per node.
    private(set) var connectErrors: [[Int64]]
    private var routeNames: [String]
    private var serviceNames: [String]
    private var nodeNames: [[String]]

    /// Where requests of the default target are counted, after the routes.
    var defaultRoute: Int { routeNames.count - 2 }
    /// Where requests no route took (404, malformed) are counted.
    var unmatchedRoute: Int { routeNames.count - 1 }

    init(config: FulcrumConfig) {
        routeNames = config.routes.map(\.name) + [TrafficReport.defaultRoute, TrafficReport.unmatchedRoute]
        serviceNames = config.services.map(\.name)
        nodeNames = config.services.map { $0.nodes.map(\.name) }
        routes = routeNames.map { _ in TrafficRecorder() }
        services = serviceNames.map { _ in TrafficRecorder() }
        nodes = nodeNames.map { $0.map { _ in TrafficRecorder() } }
        connectErrors = nodeNames.map { $0.map { _ in 0 } }
    }

    /// Re-indexes for `config`, carrying recorders over by name.
    mutating func install(_ config: FulcrumConfig) {
        var next = LoopStatistics(config: config)
        let oldRoutes = Dictionary(zip(routeNames, routes), uniquingKeysWith: { first, _ in first })
        let oldServices = Dictionary(zip(serviceNames, services), uniquingKeysWith: { first, _ in first })
        var oldNodes: [String: (TrafficRecorder, Int64)] = [:]
        for (s, names) in nodeNames.enumerated() {
            for (n, name) in names.enumerated() { oldNodes["\(serviceNames[s])/\(name)"] = (nodes[s][n], connectErrors[s][n]) }
        }
        for (index, name) in next.routeNames.enumerated() { if let kept = oldRoutes[name] { next.routes[index] = kept } }
        for (index, name) in next.serviceNames.enumerated() { if let kept = oldServices[name] { next.services[index] = kept } }
        for (s, names) in next.nodeNames.enumerated() {
            for (n, name) in names.enumerated() {
                if let (recorder, errors) = oldNodes["\(next.serviceNames[s])/\(name)"] { (next.nodes[s][n], next.connectErrors[s][n]) = (recorder, errors) }
            }
        }
        self = next
    }

    /// Counts one response. `route` is a route index, ``defaultRoute`` or ``unmatchedRoute``.
    mutating func record(
        route: Int, service: Int?, node: Int?, status: UInt, latencyNanoseconds: Int64, requestBytes: Int, responseBytes: Int, now: UInt64
    ) {
        let sample = TrafficSample(
            status: status, latencyNanoseconds: latencyNanoseconds, requestBytes: requestBytes, responseBytes: responseBytes,
            second: Int64(now / 1_000_000_000))
        routes[route].record(sample)
        guard let service else { return }
        services[service].record(sample)
        guard let node else { return }
        nodes[service][node].record(sample)
    }

    /// Counts a failed connection attempt to a node.
    mutating func countConnectError(service: Int, node: Int) {
        connectErrors[service][node] += 1
    }

    /// Snapshots of every recorder, named.
    func snapshot(endingAt second: Int64, seconds: Int) -> TrafficReport {
        TrafficReport(
            seconds: seconds,
            routes: zip(routeNames, routes).map { .init(name: $0, traffic: $1.snapshot(endingAt: second, seconds: seconds)) },
            services: zip(serviceNames, services).map { .init(name: $0, traffic: $1.snapshot(endingAt: second, seconds: seconds)) },
            nodes: nodeNames.enumerated().flatMap { s, names in
                names.enumerated().map { n, name in
                    .init(
                        name: name, service: serviceNames[s], traffic: nodes[s][n].snapshot(endingAt: second, seconds: seconds),
                        connectErrors: connectErrors[s][n])
                }
            })
    }
}

/// Traffic by route, service and node over all event loops: totals since start and the last
/// ``seconds`` complete seconds. From ``ProxyServer/traffic(seconds:)``.
public struct TrafficReport: Sendable {
    /// The name under which requests of the default target are reported among the routes.
    public static let defaultRoute = "(default)"
    /// The name under which requests no route took (404s, malformed requests) are reported.
    public static let unmatchedRoute = "(unmatched)"

    public struct Entry: Sendable {
        public var name: String
        /// For nodes: their service.
        public var service: String? = nil
        public var traffic: TrafficSnapshot
        /// For nodes: failed connection attempts since start.
        public var connectErrors: Int64 = 0
    }

    public var seconds: Int
    public var routes: [Entry]
    public var services: [Entry]
    public var nodes: [Entry]

    /// Adds another loop's report (entries matched by name).
    mutating func merge(_ other: TrafficReport) {
        func merge(_ mine: inout [Entry], _ theirs: [Entry]) {
            for entry in theirs {
                if let index = mine.firstIndex(where: { $0.name == entry.name && $0.service == entry.service }) {
                    mine[index].traffic.merge(entry.traffic)
                    mine[index].connectErrors += entry.connectErrors
                } else {
                    mine.append(entry)
                }
            }
        }
        merge(&routes, other.routes)
        merge(&services, other.services)
        merge(&nodes, other.nodes)
    }
}
