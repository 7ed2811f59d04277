/// A route's split compiled for one configuration: target indices resolved, weights as cumulative
/// bounds over 10,000 buckets. Deciding is a few comparisons and at most one hash.
public struct SplitDecider: Sendable {
    /// Why a target was chosen.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// Rule number (0-based) held.
        case rule(Int)
        /// The sticky cookie named the target.
        case cookie
        /// The hash of the key fell in the target's share (the bucket, 0..<10000).
        case hash(Int)
        /// A random draw fell in the target's share.
        case weight

        public var description: String {
            switch self {
            case .rule(let index): return "rule \(index + 1)"
            case .cookie: return "sticky cookie"
            case .hash(let bucket): return "hash of the key (bucket \(bucket) of 10000)"
            case .weight: return "weighted random choice"
            }
        }
    }

    public struct Decision: Sendable, Equatable {
        /// The target's index in the split.
        public var target: Int
        public var reason: Reason
        /// Whether the response should set the sticky cookie (a weighted decision with a sticky cookie configured).
        public var setsCookie: Bool
    }

    public static let buckets = 10_000

    public let split: TrafficSplit
    /// Upper bucket bound of each target, cumulative.
    private let bounds: [Int]

    public init(split: TrafficSplit) {
        self.split = split
        var total = 0
        bounds = split.targets.map { target in
            total += target.weight * (Self.buckets / 100)
            return total
        }
    }

    public func decide<Request: RoutingRequest>(_ request: Request, random: inout FastRandom) -> Decision {
        for (index, rule) in split.rules.enumerated() where Self.holds(rule.condition, request) {
            if let target = split.targets.firstIndex(where: { $0.name == rule.target }) {
                return Decision(target: target, reason: .rule(index), setsCookie: false)
            }
        }
        if let sticky = split.stickyCookie, let value = request.cookie(sticky.name),
            let target = split.targets.firstIndex(where: { $0.name == value[...] }), split.targets[target].weight > 0
        {
            return Decision(target: target, reason: .cookie, setsCookie: false)
        }
        let sticky = split.stickyCookie != nil
        if let key = split.hashKey, let value = ServiceBalancer.keyValue(key, of: request) {
            let bucket = Int(StableHash.hash(value.utf8) % UInt64(Self.buckets))
            return Decision(target: target(for: bucket), reason: .hash(bucket), setsCookie: sticky)
        }
        return Decision(target: target(for: random.below(Self.buckets)), reason: .weight, setsCookie: sticky)
    }

    private func target(for bucket: Int) -> Int {
        bounds.firstIndex { bucket < $0 } ?? (bounds.count - 1)
    }

    private static func holds<Request: RoutingRequest>(_ condition: TrafficSplit.Rule.Condition, _ request: Request) -> Bool {
        switch condition {
        case .header(let c): return request.header(c.name).map { value in c.values.contains { value == $0 } } ?? false
        case .cookie(let c): return request.cookie(c.name).map { value in c.values.contains { value == $0 } } ?? false
        case .query(let c):
            return request.queryParameter(c.name).map { raw in c.values.contains { QueryString.decodedValue(raw, equals: $0) } } ?? false
        case .clientIP(let ranges): return ranges.contains { $0.contains(request.clientIP) }
        }
    }
}
