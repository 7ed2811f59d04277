/// nginx's smooth weighted round robin: each pick adds every eligible node's weight to its running
/// score, takes the highest score and subtracts the total. Over any cycle of `sum(weights)` picks
/// each node is chosen exactly `weight` times, evenly interleaved (5,1,1 gives a a b a c a a).
public struct SmoothWeightedRoundRobin: Sendable {
    private let weights: [Int]
    private var scores: [Int]

    public init(weights: [Int]) {
        self.weights = weights
        self.scores = Array(repeating: 0, count: weights.count)
    }

    /// The next node among those for which `isEligible` holds, or `nil` if none has a weight.
    public mutating func pick(isEligible: (Int) -> Bool) -> Int? {
        var best = -1
        var total = 0
        for index in weights.indices where weights[index] > 0 && isEligible(index) {
            scores[index] += weights[index]
            total += weights[index]
            if best < 0 || scores[index] > scores[best] { best = index }
        }
        guard best >= 0 else { return nil }
        scores[best] -= total
        return best
    }
}
