/// Passive health: watches the outcomes of real requests to the nodes of one service and ejects a
/// node after consecutive failures, for a time that doubles with each repeated ejection up to a
/// maximum, never ejecting more than a set share of the service's nodes at once.
public struct OutlierDetection: Sendable {
    /// When and for how long nodes are ejected.
    public struct Policy: Sendable, Equatable {
        /// Consecutive failures (connection errors, timeouts, chosen 5xx) that eject a node.
        public var consecutiveFailures: Int
        /// Ejection time of a first ejection; doubled for each further one.
        public var baseEjection: Duration
        /// The longest ejection.
        public var maxEjection: Duration
        /// The largest share of the service's nodes (0–100 %) that may be ejected at once; at
        /// least one node may always be ejected when the service has more than one.
        public var maxEjectedPercent: Int

        public init(consecutiveFailures: Int = 5, baseEjection: Duration = .seconds(30), maxEjection: Duration = .seconds(300), maxEjectedPercent: Int = 50) {
            self.consecutiveFailures = consecutiveFailures
            self.baseEjection = baseEjection
            self.maxEjection = maxEjection
            self.maxEjectedPercent = maxEjectedPercent
        }
    }

    /// What happened to a node because of an outcome.
    public enum Event: Sendable, Equatable {
        /// The node is ejected until `until` (monotonic nanoseconds); `count` ejections so far.
        case ejected(node: Int, until: UInt64, count: Int)
        /// The threshold was reached but the ejection cap kept the node in.
        case ejectionCapped(node: Int)
    }

    private struct NodeState: Sendable {
        var consecutiveFailures = 0
        var ejections = 0
        var ejectedUntil: UInt64 = 0
    }

    public let policy: Policy
    private var nodes: [NodeState]

    public init(nodeCount: Int, policy: Policy) {
        self.policy = policy
        self.nodes = Array(repeating: NodeState(), count: nodeCount)
    }

    /// The detection for a changed node list under `policy`: `previous[i]` is the index in this
    /// detection of the new list's node `i`, when it is the same node (its streak, ejection count
    /// and ejection carry over); `nil` for a new node, which starts clean.
    public func carried(to previous: [Int?], policy: Policy) -> OutlierDetection {
        var carried = OutlierDetection(nodeCount: previous.count, policy: policy)
        for (index, old) in previous.enumerated() {
            if let old { carried.nodes[index] = nodes[old] }
        }
        return carried
    }

    /// Whether `node` is ejected at `now` (monotonic nanoseconds).
    public func isEjected(_ node: Int, now: UInt64) -> Bool {
        nodes[node].ejectedUntil > now
    }

    /// Nodes ejected at `now`.
    public func ejectedCount(now: UInt64) -> Int {
        nodes.reduce(0) { $0 + ($1.ejectedUntil > now ? 1 : 0) }
    }

    /// Records a successful exchange with `node`: its failure streak ends.
    public mutating func recordSuccess(_ node: Int) {
        nodes[node].consecutiveFailures = 0
    }

    /// Records a failed exchange with `node` and returns the ejection it causes, if any.
    public mutating func recordFailure(_ node: Int, now: UInt64) -> Event? {
        guard !isEjected(node, now: now) else { return nil }
        nodes[node].consecutiveFailures += 1
        guard nodes[node].consecutiveFailures >= policy.consecutiveFailures else { return nil }
        nodes[node].consecutiveFailures = 0
        let cap = max(1, nodes.count * policy.maxEjectedPercent / 100)
        guard nodes.count > 1, ejectedCount(now: now) < cap else { return .ejectionCapped(node: node) }
        nodes[node].ejections += 1
        let factor = Int64(1) << Int64(min(nodes[node].ejections - 1, 30))
        let base = policy.baseEjection.nanoseconds
        let time = min(base.multipliedReportingOverflow(by: factor).overflow ? Int64.max : base * factor, policy.maxEjection.nanoseconds)
        nodes[node].ejectedUntil = now + UInt64(time)
        return .ejected(node: node, until: nodes[node].ejectedUntil, count: nodes[node].ejections)
    }

    /// Ends an ejection early (an active probe succeeded); the ejection count is kept.
    public mutating func reinstate(_ node: Int) {
        nodes[node].ejectedUntil = 0
        nodes[node].consecutiveFailures = 0
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : product + attoseconds / 1_000_000_000
    }
}
