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

/// An IPv4 or IPv6 address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The address as 16 bytes (IPv4 mapped into `::ffff:0:0/96`).
    private let bytes: [UInt8]
    private let prefixLength: Int
    public let description: String

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; `nil` when it is neither.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(address: parts[0]) else { return nil }
        let maximum = address.isIPv4 ? 32 : 128
        var length = maximum
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
            length = value
        }
        bytes = address.bytes
        prefixLength = address.isIPv4 ? length + 96 : length
        description = text
    }

    /// Whether `address` (textual) falls in the range.
    public func contains(_ address: Substring) -> Bool {
        guard let other = Self.parse(address: address) else { return false }
        var remaining = prefixLength
        for index in 0..<16 where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    private static func parse(address: Substring) -> (bytes: [UInt8], isIPv4: Bool)? {
        if address.contains(":") {
            guard let bytes = parseIPv6(address) else { return nil }
            return (bytes, false)
        }
        let octets = address.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var bytes: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, let value = UInt8(octet) else { return nil }
            bytes.append(value)
        }
        return (bytes, true)
    }

    private static func parseIPv6(_ text: Substring) -> [UInt8]? {
        var text = text
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }  // zone
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1]) : []
        guard let tail else { return nil }
        let missing = 8 - head.count - tail.count
        guard halves.count == 2 ? missing >= 1 : missing == 0 else { return nil }
        let all = head + Array(repeating: 0, count: max(missing, 0)) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

extension Substring {
    /// `String.components(separatedBy:)` without Foundation, for one separator.
    fileprivate func components(separatedBy separator: String) -> [String] {
        var result: [String] = []
        var rest = self[...]
        while let range = rest.firstRange(of: separator) {
            result.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        result.append(String(rest))
        return result
    }
}
