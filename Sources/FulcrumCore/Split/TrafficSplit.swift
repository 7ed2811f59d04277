/// How a route divides its traffic between two or more targets (services, or groups of a service's
/// nodes chosen by tag): rules that send chosen requests to a target, then weights (percentages),
/// optionally applied to a hash of a key so that one user always lands on the same side, and
/// optionally a cookie that keeps a browser on the side it was given.
public struct TrafficSplit: Sendable, Equatable {
    /// One side of a split.
    public struct Target: Sendable, Equatable {
        /// Unique within the split; rules, the sticky cookie and logs use it.
        public var name: String
        public var service: String
        /// Only the service's nodes carrying every one of these tags; empty: all its nodes.
        public var tags: [String]
        /// Percent of the requests no rule or cookie decided (the weights of a split add up to 100).
        public var weight: Int

        /// The name of a target that is not given one: its service, then its tags, joined by `-`.
        public static func defaultName(service: String, tags: [String]) -> String {
            ([service] + tags).joined(separator: "-")
        }

        public init(name: String, service: String, tags: [String] = [], weight: Int) {
            self.name = name
            self.service = service
            self.tags = tags
            self.weight = weight
        }
    }

    /// A condition that sends a request to a target, whatever the weights.
    public struct Rule: Sendable, Equatable {
        public enum Condition: Sendable, Equatable {
            case header(ValueCondition)
            case cookie(ValueCondition)
            case query(ValueCondition)
            case clientIP([AddressRange])
        }

        /// The target's name.
        public var target: String
        public var condition: Condition

        public init(target: String, condition: Condition) {
            self.target = target
            self.condition = condition
        }
    }

    /// The cookie that keeps a browser on its side.
    public struct StickyCookie: Sendable, Equatable {
        public var name: String
        public var maxAge: Duration

        public init(name: String, maxAge: Duration) {
            self.name = name
            self.maxAge = maxAge
        }
    }

    public var targets: [Target]
    /// Checked in order; the first that holds decides.
    public var rules: [Rule]
    /// When set (and the request has it), the weights are applied to a hash of this key instead of
    /// a random number: the same key always gets the same side while the weights stay, and keeps
    /// it as the last target's weight grows.
    public var hashKey: HashKey?
    public var stickyCookie: StickyCookie?
    /// A progressive release that moves the weights on its own.
    public var rollout: Rollout?

    public init(targets: [Target], rules: [Rule] = [], hashKey: HashKey? = nil, stickyCookie: StickyCookie? = nil) {
        self.targets = targets
        self.rules = rules
        self.hashKey = hashKey
        self.stickyCookie = stickyCookie
    }
}
