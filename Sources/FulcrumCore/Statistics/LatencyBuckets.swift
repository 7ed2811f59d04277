/// Log-linear latency buckets: below 64 µs one bucket, then every power of two of microseconds
/// split into four equal parts (at most 25 % wide), up to about 134 s; slower responses share the
/// last bucket. Indexing costs a few integer operations.
public enum LatencyBuckets {
    public static let count = 85

    /// The bucket of a duration.
    @inlinable
    public static func index(nanoseconds: Int64) -> Int {
        let micros = UInt64(max(0, nanoseconds / 1000))
        guard micros >= 64 else { return 0 }
        let exponent = 63 - micros.leadingZeroBitCount
        let quarter = Int((micros >> UInt64(exponent - 2)) & 3)
        return min((exponent - 6) * 4 + quarter + 1, count - 1)
    }

    /// The lower bound of a bucket, in microseconds.
    public static func lowerBound(_ index: Int) -> Double {
        index == 0 ? 0 : upperBound(index - 1)
    }

    /// The upper bound of a bucket, in microseconds (the last bucket has none; its nominal bound is given).
    public static func upperBound(_ index: Int) -> Double {
        guard index > 0 else { return 64 }
        let exponent = (index - 1) / 4 + 6
        let quarter = (index - 1) % 4
        return Double(1 << exponent) * (1 + Double(quarter + 1) / 4)
    }

    /// The `fraction` quantile (0...1) of the durations counted in `counts` (one count per
    /// bucket), in microseconds, interpolated linearly inside its bucket; `nil` without durations.
    public static func quantile<C: Collection>(_ fraction: Double, counts: C) -> Double? where C.Element: BinaryInteger {
        var total = 0.0
        for count in counts { total += Double(count) }
        guard total > 0 else { return nil }
        let rank = max(1, (fraction * total).rounded(.up))
        var seen = 0.0
        for (index, count) in counts.enumerated() where count > 0 {
            let inBucket = Double(count)
            if seen + inBucket >= rank {
                let low = lowerBound(index)
                let high = upperBound(index)
                return low + (high - low) * (rank - seen) / inBucket
            }
            seen += inBucket
        }
        return upperBound(count - 1)
    }
}
