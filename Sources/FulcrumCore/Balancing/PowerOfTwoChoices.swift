/// Least connections by the power of two random choices: draw two distinct nodes at random
/// (weighted) and keep the one with fewer requests in flight relative to its weight. Nearly as good
/// as a full scan at spreading load, with no shared ordering to maintain.
public struct PowerOfTwoChoices: Sendable {
    private let weights: [Int]
    private let sampler: WeightedRandom

    public init(weights: [Int]) {
        self.weights = weights
        self.sampler = WeightedRandom(weights: weights)
    }

    /// - Parameter inFlight: requests currently in flight per node.
    public func pick(inFlight: [Int], using random: inout FastRandom, isEligible: (Int) -> Bool) -> Int? {
        guard let first = sampler.pick(using: &random, isEligible: isEligible) else { return nil }
        guard let second = sampler.pick(using: &random, isEligible: { $0 != first && isEligible($0) }) else {
            return first
        }
        // fewer in flight per unit of weight wins: a/wa < b/wb  <=>  a*wb < b*wa
        let loadFirst = inFlight[first] * weights[second]
        let loadSecond = inFlight[second] * weights[first]
        return loadSecond < loadFirst ? second : first
    }
}
