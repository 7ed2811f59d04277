import FulcrumCore
import NIOConcurrencyHelpers
import NIOCore

/// The keys CC rules banned, shared by every event loop. A loop that sees a key go over a rule's
/// limit bans it here, and the board tells every loop, which keeps its own copy to check requests
/// against without a lock; lifting a ban (the admin API) goes the same way. Bans are rare events,
/// so the lock is off the request path.
final class BanBoard: Sendable {
    /// A banned key of a CC rule (by the rule's name, so that a ban outlives a reload that keeps
    /// the rule).
    struct Key: Hashable, Sendable {
        var rule: String
        var key: String
    }

    struct Ban: Sendable {
        var key: Key
        /// Monotonic nanoseconds.
        var until: UInt64
    }

    enum Change: Sendable {
        case banned(Ban)
        case lifted(Key)
    }

    private let bans = NIOLockedValueBox<[Key: UInt64]>([:])
    private let publish: @Sendable (Change) -> Void

    init(publish: @escaping @Sendable (Change) -> Void) {
        self.publish = publish
    }

    func ban(_ ban: Ban) {
        bans.withLockedValue { $0[ban.key] = ban.until }
        publish(.banned(ban))
    }

    /// Lifts a ban; returns whether there was one.
    func lift(_ key: Key, now: UInt64) -> Bool {
        let existed = bans.withLockedValue { bans in
            defer { bans[key] = nil }
            return bans[key].map { $0 > now } ?? false
        }
        if existed { publish(.lifted(key)) }
        return existed
    }

    /// Drops the bans of CC rules a new configuration no longer has (the loops' copies go with
    /// their rules when they install it).
    func keepBans(ofRules names: Set<String>) {
        bans.withLockedValue { bans in bans = bans.filter { names.contains($0.key.rule) } }
    }

    /// The bans in force at `now`; expired ones are dropped.
    func current(now: UInt64) -> [Ban] {
        bans.withLockedValue { bans in
            bans = bans.filter { $0.value > now }
            return bans.map { Ban(key: $0.key, until: $0.value) }.sorted { ($0.key.rule, $0.key.key) < ($1.key.rule, $1.key.key) }
        }
    }
}
