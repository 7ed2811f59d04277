/// Weighted random choice: a node is picked with probability weight / total weight.
/// Uses prefix sums and a binary search; falls back to a scan when some nodes are excluded.
public struct WeightedRandom: Sendable {
    private let weights: [Int]
    private let cumulative: [Int]

    public init(weights: [Int]) {
        self.weights = weights
        var running = 0
        self.cumulative = weights.map { running += $0; return running }
    }

    public func pick(using random: inout FastRandom, isEligible: (Int) -> Bool) -> Int? {
        guard let total = cumulative.last, total > 0 else { return nil }
        let target = random.below(total)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] > target { high = mid } else { low = mid + 1 }
        }
        if isEligible(low) { return low }
        return pickAmongEligible(using: &random, isEligible: isEligible)
    }

    private func pickAmongEligible(using random: inout FastRandom, isEligible: (Int) -> Bool) -> Int? {
        var total = 0
        for index in weights.indices where isEligible(index) { total += weights[index] }
        guard total > 0 else { return nil }
        var target = random.below(total)
        for index in weights.indices where isEligible(index) {
            if target < weights[index] { return index }
            target -= weights[index]
        }
        return nil
    }
}
