import NIOCore
import Testing
@testable import FulcrumProxy

/// How long a byte count has stood still, from one look per sweep.
@Suite struct ProgressWatchTests {
    @Test func countsTheTimeSinceTheCountLastMoved() {
        var watch = ProgressWatch()
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(watch.stillFor(10, now: start) == .zero, "the first look only takes the mark")
        #expect(watch.stillFor(10, now: start + .seconds(1)) == .seconds(1))
        #expect(watch.stillFor(10, now: start + .seconds(2)) == .seconds(2))
        #expect(watch.stillFor(25, now: start + .seconds(3)) == .zero, "the count moved")
        #expect(watch.stillFor(25, now: start + .seconds(5)) == .seconds(2))
        watch.reset()
        #expect(watch.stillFor(25, now: start + .seconds(6)) == .zero, "a reset starts again, even for the same count")
        #expect(watch.stillFor(25, now: start + .seconds(7)) == .seconds(1))
    }
}
