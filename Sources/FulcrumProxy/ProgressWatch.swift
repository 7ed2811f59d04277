import NIOCore

/// Tells how long a count of moved bytes has stood still, from the looks the loop's sweeper takes
/// once a second: no clock reading or bookkeeping on the path the bytes take, only the count.
struct ProgressWatch {
    /// The count at the last look, and since when it has had that value.
    private var mark: (count: Int, since: NIODeadline)?

    /// How long `count` has not changed as of `now`: zero at the first look and whenever it moved
    /// since the last one.
    mutating func stillFor(_ count: Int, now: NIODeadline) -> TimeAmount {
        guard let mark, mark.count == count else {
            mark = (count, now)
            return .zero
        }
        return now - mark.since
    }

    /// Forgets the last look: the next one starts counting again (a new phase whose count may
    /// happen to equal the old one).
    mutating func reset() {
        mark = nil
    }
}
