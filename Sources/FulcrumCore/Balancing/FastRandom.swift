/// A small, fast pseudo-random generator (xoshiro256**) for balancing decisions. Each event loop
/// owns one, seeded once from the system generator, so picking a node costs no system call.
/// Not for anything secret.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var splitmix = seed
        func next() -> UInt64 {
            splitmix &+= 0x9e37_79b9_7f4a_7c15
            return StableHash.mix(splitmix)
        }
        (s0, s1, s2, s3) = (next(), next(), next(), next())
    }

    /// A generator seeded from the operating system's entropy.
    public init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform value in `0..<bound` (bound > 0), by Lemire's multiply-shift.
    public mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
