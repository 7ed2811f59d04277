/// A consistent-hash ring: every node owns points on a 64-bit ring in proportion to its weight,
/// placed by hashing its *name* (not its position), and a key goes to the owner of the first point
/// at or after the key's hash. Adding or removing one of N nodes moves about 1/N of the keys.
public struct ConsistentHashRing: Sendable {
    /// Points per node of average weight; more points spread keys more evenly.
    public static let pointsPerNode = 160

    private let points: [UInt64]
    private let owners: [Int32]
    private let nodeCount: Int

    /// - Parameters:
    ///   - names: node names (stable identities).
    ///   - weights: node weights; nodes of weight 0 own no points.
    public init(names: [String], weights: [Int]) {
        let total = weights.reduce(0, +)
        let active = weights.filter { $0 > 0 }.count
        var pairs: [(UInt64, Int32)] = []
        for (index, name) in names.enumerated() where weights[index] > 0 {
            let count = max(1, Int((Double(Self.pointsPerNode * active * weights[index]) / Double(total)).rounded()))
            for replica in 0..<count {
                pairs.append((StableHash.hash("\(name)#\(replica)".utf8), Int32(index)))
            }
        }
        pairs.sort { $0.0 < $1.0 }
        self.points = pairs.map(\.0)
        self.owners = pairs.map(\.1)
        self.nodeCount = names.count
    }

    /// The node for a key hash, skipping points of ineligible nodes; `nil` if none is eligible.
    public func node(for keyHash: UInt64, isEligible: (Int) -> Bool) -> Int? {
        guard !points.isEmpty else { return nil }
        var low = 0
        var high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid] < keyHash { low = mid + 1 } else { high = mid }
        }
        for step in 0..<points.count {
            let owner = Int(owners[(low + step) % points.count])
            if isEligible(owner) { return owner }
        }
        return nil
    }
}
