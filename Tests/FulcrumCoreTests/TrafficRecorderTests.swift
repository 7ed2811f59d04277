import Testing
@testable import FulcrumCore

@Suite struct TrafficRecorderTests {
    @Test func bucketsAreLogLinearAndContainTheirValues() {
        #expect(LatencyBuckets.index(nanoseconds: 63_999) == 0)
        #expect(LatencyBuckets.index(nanoseconds: 64_000) == 1)
        #expect(LatencyBuckets.index(nanoseconds: 79_999) == 1)
        #expect(LatencyBuckets.index(nanoseconds: 80_000) == 2)
        #expect(LatencyBuckets.index(nanoseconds: 128_000) == 5)
        #expect(LatencyBuckets.index(nanoseconds: -5) == 0)
        #expect(LatencyBuckets.index(nanoseconds: 3_600_000_000_000) == LatencyBuckets.count - 1)
        var random = FastRandom(seed: 3)
        for _ in 0..<10_000 {
            let micros = Double(random.below(100_000_000) + 64)
            let index = LatencyBuckets.index(nanoseconds: Int64(micros * 1000))
            #expect(LatencyBuckets.lowerBound(index) <= micros && micros < LatencyBuckets.upperBound(index))
            #expect(LatencyBuckets.upperBound(index) / LatencyBuckets.lowerBound(index) <= 1.25 + 1e-9)
        }
    }

    @Test func quantilesAreWithinABucketOfTheTruth() throws {
        var counts = Array(repeating: 0, count: LatencyBuckets.count)
        for millis in 1...1000 { counts[LatencyBuckets.index(nanoseconds: Int64(millis) * 1_000_000)] += 1 }
        let p50 = try #require(LatencyBuckets.quantile(0.5, counts: counts))
        let p99 = try #require(LatencyBuckets.quantile(0.99, counts: counts))
        #expect(abs(p50 - 500_000) / 500_000 < 0.25, "p50 \(p50) µs")
        #expect(abs(p99 - 990_000) / 990_000 < 0.25, "p99 \(p99) µs")
        #expect(LatencyBuckets.quantile(0.5, counts: Array(repeating: 0, count: LatencyBuckets.count)) == nil)
    }

    @Test func aWindowHoldsTheLastSecondsOnly() {
        var recorder = TrafficRecorder()
        recorder.record(TrafficSample(status: 200, latencyNanoseconds: 1_000_000, requestBytes: 10, responseBytes: 100, second: 100))
        recorder.record(TrafficSample(status: 503, latencyNanoseconds: 2_000_000, requestBytes: 0, responseBytes: 5, second: 101))
        recorder.record(TrafficSample(status: 200, latencyNanoseconds: 1_000_000, requestBytes: 0, responseBytes: 100, second: 102))
        recorder.record(TrafficSample(status: 404, latencyNanoseconds: 1_000_000, requestBytes: 0, responseBytes: 9, second: 102))
        let snapshot = recorder.snapshot(endingAt: 102, seconds: 2)
        #expect(snapshot.windowSummary.requests == [0, 1, 0, 1, 1])
        #expect(snapshot.perSecond.map(\.total) == [1, 2])
        #expect(snapshot.perSecond[0].errorRatio == 1)
        #expect(snapshot.totals.requestCount == 4 && snapshot.totals.responseBytes == 214 && snapshot.totals.requestBytes == 10)
        #expect(snapshot.totals.latencySumNanoseconds == 5_000_000)
        // 60 s later the slots of seconds 100...102 are stale and not reported
        recorder.record(TrafficSample(status: 200, latencyNanoseconds: 1_000_000, requestBytes: 0, responseBytes: 1, second: 161))
        #expect(recorder.snapshot(endingAt: 161, seconds: 60).windowSummary.total == 3, "seconds 102 (two) and 161")
        #expect(recorder.snapshot(endingAt: 162, seconds: 60).windowSummary.total == 1, "second 102 has left the window")
        #expect(recorder.snapshot(endingAt: 161, seconds: 1000).seconds == TrafficRecorder.windowSeconds)
    }

    @Test func snapshotsOfSeveralLoopsMerge() {
        var first = TrafficRecorder()
        var second = TrafficRecorder()
        first.record(TrafficSample(status: 200, latencyNanoseconds: 1_000_000, requestBytes: 0, responseBytes: 1, second: 10))
        second.record(TrafficSample(status: 500, latencyNanoseconds: 9_000_000, requestBytes: 0, responseBytes: 1, second: 10))
        var merged = TrafficSnapshot(seconds: 5, endSecond: 10)
        merged.merge(first.snapshot(endingAt: 10, seconds: 5))
        merged.merge(second.snapshot(endingAt: 10, seconds: 5))
        #expect(merged.totals.requests == [0, 1, 0, 0, 1])
        #expect(merged.windowSummary.errorRatio == 0.5)
        #expect(merged.perSecond.last?.total == 2 && merged.perSecond.first?.total == 0)
        #expect((merged.windowSummary.p99Microseconds ?? 0) > 8_000)
    }
}
