import Testing
@testable import FulcrumCore

@Suite struct LimiterTests {
    let second: UInt64 = 1_000_000_000

    /// Admissions over `seconds` of requests arriving every `gap` nanoseconds.
    func admitted(_ acquire: (UInt64) -> LimitDecision, seconds: UInt64, gap: UInt64, start: UInt64 = 0) -> Int {
        var count = 0
        var now = start
        while now < start + seconds * second {
            if acquire(now).isAdmitted { count += 1 }
            now += gap
        }
        return count
    }

    @Test func tokenBucketStartsFullThenAdmitsTheRate() {
        var bucket = TokenBucket(rate: 10, burst: 5, now: 0)
        for expected in (0..<5).reversed() {
            #expect(bucket.acquire(now: 0) == .allowed(remaining: expected, reset: .nanoseconds(Int64(Double(5 - expected) / 10 * 1e9))))
        }
        #expect(bucket.acquire(now: 0) == .rejected(retryAfter: .milliseconds(100), reset: .milliseconds(500)))
        #expect(bucket.acquire(now: 100_000_000).isAdmitted)
        // sustained: 1000 requests/s offered for 10 s, 10/s admitted (+ the burst)
        var sustained = TokenBucket(rate: 10, burst: 5, now: 0)
        let count = admitted({ sustained.acquire(now: $0) }, seconds: 10, gap: 1_000_000)
        #expect(count >= 104 && count <= 106, "admitted \(count)")
    }

    @Test func tokenBucketIgnoresAClockThatStepsBack() {
        var bucket = TokenBucket(rate: 1, burst: 1, now: 10 * second)
        #expect(bucket.acquire(now: 10 * second).isAdmitted)
        #expect(!bucket.acquire(now: 5 * second).isAdmitted, "going back in time refills nothing")
        #expect(bucket.acquire(now: 11 * second).isAdmitted)
        #expect(!bucket.isIdle(now: 11 * second))
        #expect(bucket.isIdle(now: 12 * second))
    }

    @Test func leakyBucketSmoothsBurstsAndRejectsBeyondTheMaximumDelay() {
        var bucket = LeakyBucket(rate: 10, maxDelay: .milliseconds(300), now: 0)
        #expect(bucket.acquire(now: 0) == .allowed(remaining: 3, reset: .milliseconds(100)))
        #expect(bucket.acquire(now: 0) == .delayed(.milliseconds(100), remaining: 2, reset: .milliseconds(200)))
        #expect(bucket.acquire(now: 0) == .delayed(.milliseconds(200), remaining: 1, reset: .milliseconds(300)))
        #expect(bucket.acquire(now: 0) == .delayed(.milliseconds(300), remaining: 0, reset: .milliseconds(400)))
        #expect(bucket.acquire(now: 0) == .rejected(retryAfter: .milliseconds(100), reset: .milliseconds(400)))
        #expect(!bucket.isIdle(now: 0))
        #expect(bucket.isIdle(now: 400_000_000))
        var sustained = LeakyBucket(rate: 50, maxDelay: .milliseconds(100), now: 0)
        let count = admitted({ sustained.acquire(now: $0) }, seconds: 10, gap: 1_000_000)
        #expect(count >= 500 && count <= 506, "admitted \(count)")
    }

    @Test func slidingWindowCountsAcrossTheWindowBoundary() {
        var window = SlidingWindow(limit: 10, window: .seconds(1), now: 0)
        for _ in 0..<10 { #expect(window.acquire(now: 900_000_000).isAdmitted) }
        #expect(!window.acquire(now: 900_000_000).isAdmitted)
        // at 1.5 s half of the previous window still counts: 10 * 0.5 = 5 used, 5 left
        var admittedAtHalf = 0
        for _ in 0..<10 where window.acquire(now: 1_500_000_000).isAdmitted { admittedAtHalf += 1 }
        #expect(admittedAtHalf == 5)
        // two windows later nothing is remembered
        #expect(window.acquire(now: 3_100_000_000) == .allowed(remaining: 9, reset: .milliseconds(900)))
        #expect(window.isIdle(now: 5 * second))
        var sustained = SlidingWindow(limit: 100, window: .seconds(1), now: 0)
        let count = admitted({ sustained.acquire(now: $0) }, seconds: 10, gap: 1_000_000)
        #expect(count >= 990 && count <= 1_010, "admitted \(count) of an allowed 1000")
    }

    @Test func slidingWindowRejectionTellsWhenToRetry() {
        var window = SlidingWindow(limit: 2, window: .seconds(10), now: 0)
        _ = window.acquire(now: 0)
        _ = window.acquire(now: 0)
        guard case .rejected(let retryAfter, let reset) = window.acquire(now: second) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(reset == .seconds(9))
        #expect(retryAfter > .zero && retryAfter <= .seconds(19))
        #expect(!window.acquire(now: 5 * second).isAdmitted)
    }
}

@Suite struct KeyedLimiterTests {
    @Test func eachKeyHasItsOwnStateAndMemoryIsBounded() {
        var limiter = KeyedLimiter(limit: RateLimit(algorithm: .tokenBucket(rate: 1, burst: 1), maxKeys: 3))
        #expect(limiter.acquire(key: "a", now: 0) != .limited(.rejected(retryAfter: .seconds(1), reset: .seconds(1))))
        #expect(limiter.acquire(key: "a", now: 0) == .limited(.rejected(retryAfter: .seconds(1), reset: .seconds(1))))
        #expect(limiter.acquire(key: "b", now: 0) == .limited(.allowed(remaining: 0, reset: .seconds(1))))
        #expect(limiter.acquire(key: "c", now: 0) == .limited(.allowed(remaining: 0, reset: .seconds(1))))
        #expect(limiter.trackedKeys == 3)
        // full, nothing idle: a new key passes untracked instead of evicting a limited one
        #expect(limiter.acquire(key: "d", now: 0) == .untracked)
        #expect(limiter.acquire(key: "a", now: 0) == .limited(.rejected(retryAfter: .seconds(1), reset: .seconds(1))))
        // a second later every bucket is full again (idle): room is made for the new key
        #expect(limiter.acquire(key: "d", now: 1_000_000_000) == .limited(.allowed(remaining: 0, reset: .seconds(1))))
        #expect(limiter.trackedKeys == 1)
        limiter.sweep(now: 2_000_000_000)
        #expect(limiter.trackedKeys == 0)
    }

    @Test func advertisedLimits() {
        #expect(RateLimit(algorithm: .tokenBucket(rate: 5, burst: 20)).advertisedLimit == 20)
        #expect(RateLimit(algorithm: .leakyBucket(rate: 10, maxDelay: .milliseconds(500))).advertisedLimit == 6)
        #expect(RateLimit(algorithm: .slidingWindow(limit: 100, window: .seconds(60))).advertisedLimit == 100)
    }
}

@Suite struct KeyedLimiterFloodTests {
    @Test func aMillionDistinctKeysStayWithinTheBound() {
        // (with a sweep per new key instead of one per 100 ms this loop would take hours)
        var limiter = KeyedLimiter(limit: RateLimit(algorithm: .tokenBucket(rate: 1, burst: 1), maxKeys: 10_000))
        var untracked = 0
        for key in 0..<1_000_000 {
            // all at nearly the same time: every tracked bucket is active (not idle)
            if limiter.acquire(key: String(key), now: UInt64(key)) == .untracked { untracked += 1 }
        }
        #expect(limiter.trackedKeys == 10_000)
        #expect(untracked == 990_000)
        // a second later the buckets are full again (idle): new keys are tracked again
        #expect(limiter.acquire(key: "late", now: 2_000_000_000) != .untracked)
        #expect(limiter.trackedKeys == 1)
    }
}

/// A client guessing tokens: 2,000 wrong-token requests wrote 2,000 audit entries, unthrottled.
@Suite struct AuthenticationFailuresTests {
    static let second: UInt64 = 1_000_000_000

    @Test func aWindowsFailuresAreTwoEntriesAndThenRefusals() {
        var failures = AuthenticationFailures(limit: 4, window: .seconds(60))
        #expect(failures.recordFailure(client: "10.0.0.1", now: 0) == .audit(unrecorded: 0))
        #expect(failures.recordFailure(client: "10.0.0.1", now: Self.second) == .count)
        #expect(failures.recordFailure(client: "10.0.0.1", now: 2 * Self.second) == .count)
        #expect(failures.retryAfter(client: "10.0.0.1", now: 2 * Self.second) == nil)
        #expect(failures.recordFailure(client: "10.0.0.1", now: 3 * Self.second) == .audit(unrecorded: 2))
        #expect(failures.retryAfter(client: "10.0.0.1", now: 3 * Self.second) == 57)
        #expect(failures.retryAfter(client: "10.0.0.2", now: 3 * Self.second) == nil, "other clients are not refused")
        #expect(failures.retryAfter(client: "10.0.0.1", now: 60 * Self.second) == nil, "the window ended")
    }

    @Test func countsLeftUnwrittenAreToldByTheNextEntry() {
        var failures = AuthenticationFailures(limit: 10, window: .seconds(60))
        _ = failures.recordFailure(client: "c", now: 0)
        for second in 1...3 { #expect(failures.recordFailure(client: "c", now: UInt64(second) * Self.second) == .count) }
        #expect(failures.recordFailure(client: "c", now: 61 * Self.second) == .audit(unrecorded: 3))
    }

    @Test func theTableOfClientsIsBounded() {
        var failures = AuthenticationFailures(limit: 10, window: .seconds(60), maximumClients: 2)
        _ = failures.recordFailure(client: "a", now: 0)
        _ = failures.recordFailure(client: "b", now: 0)
        #expect(failures.recordFailure(client: "c", now: Self.second) == .audit(unrecorded: 0), "full: audited, not tracked")
        #expect(failures.recordFailure(client: "c", now: 2 * Self.second) == .audit(unrecorded: 0))
        #expect(failures.recordFailure(client: "c", now: 61 * Self.second) == .audit(unrecorded: 0), "expired clients make room")
        #expect(failures.recordFailure(client: "c", now: 62 * Self.second) == .count)
    }
}
