/// What the data plane is doing right now: node health and ejections, breaker states, limiter
/// counts and requests in flight. Served by ``ProxyServer/state()``; the admin API will expose it.
public struct ProxyState: Sendable, Equatable {
    public struct NodeState: Sendable, Equatable {
        public var name: String
        /// False when active probes marked the node down.
        public var up: Bool
        /// Seconds left of a passive-health ejection, `nil` when not ejected.
        public var ejectedFor: Double?
        /// Requests in flight to the node (all event loops).
        public var inFlight: Int
    }

    public struct LimitState: Sendable, Equatable {
        /// Requests refused with 429 since start (all event loops).
        public var rejected: Int
        /// Keys currently tracked (all event loops).
        public var trackedKeys: Int
    }

    public struct ServiceState: Sendable, Equatable {
        public var name: String
        public var nodes: [NodeState]
        /// The breaker state on each event loop (`closed`, `open`, `half-open`); empty without a breaker.
        public var breakers: [String]
        public var rateLimit: LimitState?
        /// Requests holding a `max_in_flight` slot; `nil` without that limit.
        public var limitedInFlight: Int?
    }

    public struct RouteState: Sendable, Equatable {
        public var name: String
        public var rateLimit: LimitState?
        public var limitedInFlight: Int?
    }

    /// An access rule and how often it matched since the configuration was applied.
    public struct AccessRuleState: Sendable, Equatable {
        public var name: String
        /// `global`, `service NAME` or `route NAME`.
        public var scope: String
        /// `allow`, `block` or `log`.
        public var action: String
        public var hits: Int
    }

    public struct CCRuleState: Sendable, Equatable {
        public var name: String
        /// Keys banned since the configuration was applied.
        public var bans: Int
        /// Requests refused because their key was banned.
        public var refused: Int
    }

    /// A key a CC rule banned, and for how much longer.
    public struct BanState: Sendable, Equatable {
        public var rule: String
        public var key: String
        public var secondsLeft: Double
    }

    /// The configuration generation in use.
    public var generation: Int
    public var services: [ServiceState]
    public var routes: [RouteState]
    public var accessRules: [AccessRuleState] = []
    public var cc: [CCRuleState] = []
    public var bans: [BanState] = []

    /// A few lines for people: one per node, then breakers and limits where configured.
    public var summary: String {
        var lines: [String] = []
        for service in services {
            for node in service.nodes {
                var words = [node.up ? "up" : "down"]
                if let seconds = node.ejectedFor { words.append("ejected for \(Int(seconds.rounded(.up)))s") }
                words.append("\(node.inFlight) in flight")
                lines.append("\(service.name)/\(node.name) \(words.joined(separator: ", "))")
            }
            if !service.breakers.isEmpty { lines.append("\(service.name) circuit \(service.breakers.joined(separator: " / ")) (per event loop)") }
            if let limit = service.rateLimit { lines.append("\(service.name) rate limit: \(limit.rejected) rejected, \(limit.trackedKeys) keys") }
            if let inFlight = service.limitedInFlight { lines.append("\(service.name) max_in_flight: \(inFlight) in flight") }
        }
        for route in routes {
            if let limit = route.rateLimit { lines.append("route \(route.name) rate limit: \(limit.rejected) rejected, \(limit.trackedKeys) keys") }
            if let inFlight = route.limitedInFlight { lines.append("route \(route.name) max_in_flight: \(inFlight) in flight") }
        }
        for rule in accessRules where rule.hits > 0 { lines.append("access rule \(rule.name) (\(rule.scope), \(rule.action)): \(rule.hits) hits") }
        for ban in bans { lines.append("CC \(ban.rule) bans \(ban.key) for \(Int(ban.secondsLeft.rounded(.up)))s") }
        return lines.joined(separator: "\n")
    }
}
