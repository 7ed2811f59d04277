/// The traffic of one route, service or node on one event loop: totals since start (for metrics)
/// and a ring of one-second slots (for recent windows and live charts). Owned by one loop, so
/// recording is plain arithmetic; the ring is allocated on the first request.
public struct TrafficRecorder: Sendable {
    /// Seconds of history kept.
    public static let windowSeconds = 60
    /// Counters per slot: requests by status class (1xx...5xx), then latency buckets.
    static let slotWidth = 5 + LatencyBuckets.count

    public private(set) var totals = TrafficTotals()
    /// `windowSeconds` slots of `slotWidth` counters; slot `s % windowSeconds` holds second `s`.
    private var slots: [Int32] = []
    private var slotSeconds: [Int64] = []

    public init() {}

    /// Counts one response.
    public mutating func record(_ sample: TrafficSample) {
        let statusClass = sample.statusClass
        let bucket = sample.bucket
        let second = sample.second
        totals.record(sample)
        if slots.isEmpty {
            slots = Array(repeating: 0, count: Self.windowSeconds * Self.slotWidth)
            slotSeconds = Array(repeating: -1, count: Self.windowSeconds)
        }
        let slot = Int(second % Int64(Self.windowSeconds))
        let base = slot * Self.slotWidth
        if slotSeconds[slot] != second {
            for index in base..<base + Self.slotWidth { slots[index] = 0 }
            slotSeconds[slot] = second
        }
        slots[base + statusClass] &+= 1
        slots[base + 5 + bucket] &+= 1
    }

    /// The totals and the last `seconds` seconds up to `second` (inclusive), oldest first.
    public func snapshot(endingAt second: Int64, seconds: Int) -> TrafficSnapshot {
        let length = min(max(seconds, 0), Self.windowSeconds)
        var window = Array(repeating: Int32(0), count: length * Self.slotWidth)
        if !slots.isEmpty {
            for offset in 0..<length {
                let wanted = second - Int64(length - 1 - offset)
                guard wanted >= 0 else { continue }
                let slot = Int(wanted % Int64(Self.windowSeconds))
                guard slotSeconds[slot] == wanted else { continue }
                let from = slot * Self.slotWidth
                let to = offset * Self.slotWidth
                for index in 0..<Self.slotWidth { window[to + index] = slots[from + index] }
            }
        }
        return TrafficSnapshot(totals: totals, endSecond: second, seconds: length, window: window)
    }
}

/// One response as the recorders count it, classified once for the route, service and node it
/// is counted in.
public struct TrafficSample: Sendable {
    /// 0 for 1xx ... 4 for 5xx.
    public let statusClass: Int
    /// The ``LatencyBuckets`` index.
    public let bucket: Int
    public let latencyNanoseconds: Int64
    public let requestBytes: Int
    public let responseBytes: Int
    /// A monotonic clock's whole seconds.
    public let second: Int64

    public init(status: UInt, latencyNanoseconds: Int64, requestBytes: Int, responseBytes: Int, second: Int64) {
        statusClass = min(max(Int(status / 100), 1), 5) - 1
        bucket = LatencyBuckets.index(nanoseconds: latencyNanoseconds)
        self.latencyNanoseconds = latencyNanoseconds
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.second = second
    }
}

/// Counts since start.
public struct TrafficTotals: Sendable, Equatable {
    /// Requests by status class: index 0 is 1xx ... index 4 is 5xx.
    public var requests: [Int64] = Array(repeating: 0, count: 5)
    /// Requests per latency bucket (``LatencyBuckets``); empty until the first request.
    public var latencyBuckets: [Int64] = []
    public var latencySumNanoseconds: Int64 = 0
    public var requestBytes: Int64 = 0
    public var responseBytes: Int64 = 0

    public var requestCount: Int64 { requests.reduce(0, +) }

    mutating func record(_ sample: TrafficSample) {
        if latencyBuckets.isEmpty { latencyBuckets = Array(repeating: 0, count: LatencyBuckets.count) }
        requests[sample.statusClass] &+= 1
        latencyBuckets[sample.bucket] &+= 1
        latencySumNanoseconds &+= sample.latencyNanoseconds
        requestBytes &+= Int64(sample.requestBytes)
        responseBytes &+= Int64(sample.responseBytes)
    }

    /// Adds another loop's totals.
    public mutating func merge(_ other: TrafficTotals) {
        for index in requests.indices { requests[index] += other.requests[index] }
        if !other.latencyBuckets.isEmpty {
            if latencyBuckets.isEmpty { latencyBuckets = Array(repeating: 0, count: LatencyBuckets.count) }
            for index in latencyBuckets.indices { latencyBuckets[index] += other.latencyBuckets[index] }
        }
        latencySumNanoseconds += other.latencySumNanoseconds
        requestBytes += other.requestBytes
        responseBytes += other.responseBytes
    }
}

/// A copy of a recorder (or several, merged) for reporting: totals and recent per-second slots.
public struct TrafficSnapshot: Sendable, Equatable {
    public var totals: TrafficTotals
    /// The second of the last slot.
    public var endSecond: Int64
    /// Slots in `window`.
    public var seconds: Int
    /// `seconds` slots of ``TrafficRecorder/slotWidth`` counters, oldest first.
    var window: [Int32]

    public init(seconds: Int, endSecond: Int64) {
        totals = TrafficTotals()
        self.endSecond = endSecond
        self.seconds = seconds
        window = Array(repeating: 0, count: seconds * TrafficRecorder.slotWidth)
    }

    init(totals: TrafficTotals, endSecond: Int64, seconds: Int, window: [Int32]) {
        self.totals = totals
        self.endSecond = endSecond
        self.seconds = seconds
        self.window = window
    }

    /// The counters of each second of the window, oldest first (requests by status class, then
    /// latency buckets): what an instance publishes for the fleet's rollout leader.
    public var secondsCounters: [[Int32]] {
        let width = TrafficRecorder.slotWidth
        return (0..<seconds).map { Array(window[$0 * width..<($0 + 1) * width]) }
    }

    /// A window made of counters per second (``secondsCounters``, possibly summed over instances),
    /// oldest first, ending at `endSecond`; without totals. Counters of another width (another
    /// version's buckets) count as an empty second.
    public init(endSecond: Int64, secondsCounters: [[Int32]]) {
        let width = TrafficRecorder.slotWidth
        self.init(seconds: secondsCounters.count, endSecond: endSecond)
        for (offset, counters) in secondsCounters.enumerated() where counters.count == width {
            for index in 0..<width { window[offset * width + index] = counters[index] }
        }
    }

    /// Adds another snapshot of the same window (another event loop's).
    public mutating func merge(_ other: TrafficSnapshot) {
        totals.merge(other.totals)
        guard other.seconds == seconds, other.endSecond == endSecond else { return }
        for index in window.indices { window[index] &+= other.window[index] }
    }

    /// One second (or the whole window) summarised.
    public struct Summary: Sendable, Equatable {
        /// Requests by status class, 1xx first.
        public var requests: [Int]
        public var p50Microseconds: Double?
        public var p90Microseconds: Double?
        public var p99Microseconds: Double?

        public var total: Int { requests.reduce(0, +) }
        /// 5xx responses over all responses (0 without requests).
        public var errorRatio: Double { total == 0 ? 0 : Double(requests[4]) / Double(total) }
    }

    /// The whole window.
    public var windowSummary: Summary {
        summary(of: 0..<seconds)
    }

    /// Each second of the window, oldest first.
    public var perSecond: [Summary] {
        (0..<seconds).map { summary(of: $0..<$0 + 1) }
    }

    private func summary(of range: Range<Int>) -> Summary {
        let width = TrafficRecorder.slotWidth
        var requests = Array(repeating: 0, count: 5)
        var latency = Array(repeating: 0, count: LatencyBuckets.count)
        for slot in range {
            let base = slot * width
            for index in 0..<5 { requests[index] += Int(window[base + index]) }
            for index in 0..<LatencyBuckets.count { latency[index] += Int(window[base + 5 + index]) }
        }
        return Summary(
            requests: requests, p50Microseconds: LatencyBuckets.quantile(0.5, counts: latency),
            p90Microseconds: LatencyBuckets.quantile(0.9, counts: latency), p99Microseconds: LatencyBuckets.quantile(0.99, counts: latency))
    }
}
