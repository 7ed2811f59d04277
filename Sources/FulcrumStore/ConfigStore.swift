import FulcrumCore
import Foundation

/// Where Fulcrum keeps its configuration versions, its audit log and its admin tokens.
///
/// Every method is one transaction. Implementations must make ``commit(_:audit:)`` atomic (the
/// version, the active pointer and the audit entry are stored together or not at all) and durable
/// once it returns, and must check ``VersionProposal/basedOn`` inside the transaction, so that
/// several Fulcrum processes sharing one store cannot overwrite each other's changes.
public protocol ConfigStore: Sendable {
    /// Where the store is, as logs show it: a file path, or a PostgreSQL address (never with a password).
    var location: String { get }
    /// The version the data plane should serve, or `nil` while the store is empty.
    func activeVersion() async throws -> ConfigVersion?
    /// One version by number.
    func version(_ number: Int) async throws -> ConfigVersion?
    /// Version summaries, newest first.
    func versions(limit: Int, before: Int?) async throws -> [ConfigVersion.Summary]
    /// Stores a new version, makes it active and appends `audit` (with the new version's number) in
    /// one transaction.
    ///
    /// - Throws: ``StoreError/conflict(active:)`` when the active version is not `proposal.basedOn`.
    func commit(_ proposal: VersionProposal, audit: AuditRecord) async throws -> ConfigVersion
    /// Appends an entry that records no change (a read, a refused request, a failed login).
    @discardableResult
    func appendAudit(_ record: AuditRecord) async throws -> AuditEntry
    /// Audit entries matching `query`, newest first.
    func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry]
    /// Recomputes the audit chain from the first entry and reports the first break, if any.
    func verifyAuditChain() async throws -> AuditVerification
    /// Every admin token (hashes only; the store never sees a secret).
    func tokens() async throws -> [StoredToken]
    /// Adds a token. - Throws: ``StoreError/duplicateToken(_:)`` when the name is taken.
    func addToken(_ token: StoredToken) async throws
    /// Removes a token; false when there was none by that name.
    func removeToken(named name: String) async throws -> Bool
    /// Keeps an uploaded certificate chain and its private key under `chainSHA256` (the digest
    /// the configuration names it by); nothing changes when that digest is stored already. Like
    /// versions, stored certificates are never changed or removed, so any version can be rolled
    /// back to.
    func saveCertificate(_ bundle: CertificateBundle, chainSHA256: String) async throws
    /// The stored certificates among `digests`, by digest (a digest not stored is left out).
    func certificates(_ digests: Set<String>) async throws -> [String: CertificateBundle]
    /// Records (or refreshes) what an instance reports about itself: its heartbeat.
    func heartbeat(_ instance: InstanceReport) async throws
    /// Every instance that ever reported, most recent heartbeat first.
    func instances() async throws -> [InstanceReport]
    /// Publishes this instance's counters of some seconds (replacing what it published for the
    /// same key and second), and forgets everyone's counters older than ``TrafficSecond/kept``.
    func publishTraffic(instance: String, _ seconds: [TrafficSecond]) async throws
    /// Every instance's counters for `keys` from second `since` on (Unix seconds), summed per key
    /// and second.
    func fleetTraffic(keys: [String], since: Int64) async throws -> [TrafficSecond]
    /// Runs `work` only while this process leads `duty` among all the processes sharing the
    /// store, and again whenever it becomes the leader, until the task is cancelled: a duty that
    /// must be done by one instance at a time (judging and advancing progressive rollouts).
    /// `work` is cancelled when the lead is lost (the store no longer confirms it), and another
    /// process takes the duty over. A store on one host (SQLite) has one leader: `work` just runs.
    func whileLeading(_ duty: LeadDuty, _ work: @escaping @Sendable () async -> Void) async
    /// Calls `changed` whenever another process may have committed a version, until the task is
    /// cancelled: once when it starts listening (and again after every reconnection, as a change
    /// may have been missed meanwhile), then on each notification. A wake-up only: the caller
    /// reads what changed. A store that cannot notify (SQLite) returns at once; callers poll too.
    func watchForChanges(_ changed: @escaping @Sendable () async -> Void) async
}

/// One stored configuration: immutable once committed.
public struct ConfigVersion: Sendable, Equatable {
    public var number: Int
    public var createdAt: Date
    /// The token name (or `file`, `cli`) that made the change.
    public var actor: String
    public var source: ChangeSource
    public var message: String
    /// The version that was active when this one was made (`nil` for the first).
    public var basedOn: Int?
    /// The full configuration, valid when it was committed.
    public var document: ConfigDocument

    /// A version without its document, for listings.
    public struct Summary: Sendable, Equatable {
        public var number: Int
        public var createdAt: Date
        public var actor: String
        public var source: ChangeSource
        public var message: String
        public var basedOn: Int?
        public var active: Bool
    }

    /// The version without its document.
    public func summary(active: Bool) -> Summary {
        Summary(number: number, createdAt: createdAt, actor: actor, source: source, message: message, basedOn: basedOn, active: active)
    }
}

/// Where a change came from.
public enum ChangeSource: String, Sendable, Equatable, CaseIterable {
    /// Imported from the configuration file (first start, or SIGHUP).
    case file
    /// Made through the admin API.
    case api
    /// Made by a `fulcrum` command.
    case cli
    /// A rollback: a copy of an older version.
    case rollback
}

/// A change to be committed.
public struct VersionProposal: Sendable {
    public var document: ConfigDocument
    public var actor: String
    public var source: ChangeSource
    public var message: String
    /// The active version the change was made from; `nil` only for the first version of an empty store.
    public var basedOn: Int?

    public init(document: ConfigDocument, actor: String, source: ChangeSource, message: String, basedOn: Int?) {
        self.document = document
        self.actor = actor
        self.source = source
        self.message = message
        self.basedOn = basedOn
    }

    /// The version this proposal becomes when it is given `number`.
    public func version(number: Int, createdAt: Date = Date()) -> ConfigVersion {
        ConfigVersion(number: number, createdAt: createdAt, actor: actor, source: source, message: message, basedOn: basedOn, document: document)
    }
}

/// What an audit entry records, before the store numbers and chains it.
public struct AuditRecord: Sendable, Equatable {
    public var time: Date
    public var actor: String
    /// The client's address (`-` for local commands).
    public var client: String
    /// What was asked, e.g. `PUT /api/v1/services/users` or `config import`.
    public var operation: String
    /// What it concerned, e.g. `services/users`.
    public var target: String
    /// `ok`, or the refusal (`401 unauthorized`, `412 version conflict`, `400 invalid config`...).
    public var result: String
    /// For changes, the diff; for refusals, the reason.
    public var detail: String

    public init(time: Date = Date(), actor: String, client: String, operation: String, target: String, result: String, detail: String = "") {
        self.time = time
        self.actor = actor
        self.client = client
        self.operation = operation
        self.target = target
        self.result = result
        self.detail = detail
    }
}

/// A stored audit entry: the record, its sequence number, the version it created (if any) and its
/// place in the hash chain.
public struct AuditEntry: Sendable, Equatable {
    public var sequence: Int
    public var record: AuditRecord
    /// The configuration version the operation created.
    public var version: Int?
    /// The previous entry's hash (all zeros for the first entry).
    public var previousHash: String
    /// SHA-256 over the previous hash and this entry's fields (``AuditChain``).
    public var hash: String
}

/// A filter over the audit log, with pagination by sequence number.
public struct AuditQuery: Sendable, Equatable {
    public var since: Date?
    public var until: Date?
    public var actor: String?
    /// Entries whose target starts with this.
    public var targetPrefix: String?
    /// Only entries older than this sequence number (for the next page).
    public var before: Int?
    public var limit: Int

    public init(since: Date? = nil, until: Date? = nil, actor: String? = nil, targetPrefix: String? = nil, before: Int? = nil, limit: Int = 100) {
        self.since = since
        self.until = until
        self.actor = actor
        self.targetPrefix = targetPrefix
        self.before = before
        self.limit = limit
    }
}

/// The outcome of recomputing the audit chain.
public struct AuditVerification: Sendable, Equatable, CustomStringConvertible {
    /// Entries checked.
    public var entries: Int
    /// The sequence number of the first entry whose hash or link does not match, if any.
    public var firstBroken: Int?
    /// Why it does not match.
    public var problem: String?
    /// The hash of the last entry: record it elsewhere to detect a truncated log later.
    public var headHash: String

    public var isIntact: Bool { firstBroken == nil }

    public var description: String {
        if let firstBroken { return "audit chain BROKEN at entry \(firstBroken): \(problem ?? "")" }
        return "audit chain intact: \(entries) entries, head \(headHash)"
    }
}

/// What a running Fulcrum instance reports about itself to the store it serves from, every few
/// seconds (its heartbeat), so that any instance's admin API can show the whole fleet.
public struct InstanceReport: Sendable, Equatable {
    /// Made at start; one process, one id.
    public var id: String
    public var hostName: String
    /// The addresses its data plane listens on (`address:port`).
    public var listen: [String]
    /// Fulcrum's release version.
    public var fulcrumVersion: String
    public var startedAt: Date
    /// The configuration version its data plane serves.
    public var appliedVersion: Int
    /// Why it could not apply the store's active version, until it does (`nil` when it could).
    public var lastError: String?
    public var heartbeatAt: Date

    public init(
        id: String, hostName: String, listen: [String], fulcrumVersion: String, startedAt: Date, appliedVersion: Int, lastError: String?,
        heartbeatAt: Date
    ) {
        self.id = id
        self.hostName = hostName
        self.listen = listen
        self.fulcrumVersion = fulcrumVersion
        self.startedAt = startedAt
        self.appliedVersion = appliedVersion
        self.lastError = lastError
        self.heartbeatAt = heartbeatAt
    }
}

/// An admin API token as stored: its name, role and the SHA-256 of its secret.
public struct StoredToken: Sendable, Equatable {
    public var name: String
    public var role: TokenRole
    /// Hex SHA-256 of the secret.
    public var secretHash: String
    public var createdAt: Date

    public init(name: String, role: TokenRole, secretHash: String, createdAt: Date = Date()) {
        self.name = name
        self.role = role
        self.secretHash = secretHash
        self.createdAt = createdAt
    }
}

/// What a token may do.
public enum TokenRole: String, Sendable, Equatable, CaseIterable {
    /// Read everything, change nothing.
    case viewer
    /// Read and change everything.
    case admin
}

/// A store operation that could not be done.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case conflict(active: Int?)
        case duplicateToken(String)
        case corrupt(String)
    }

    private let code: Code

    /// The active version is not the one the change was based on.
    public static func conflict(active: Int?) -> StoreError { StoreError(code: .conflict(active: active)) }
    /// A token with this name exists.
    public static func duplicateToken(_ name: String) -> StoreError { StoreError(code: .duplicateToken(name)) }
    /// Stored data cannot be read back (a hand-edited or damaged database).
    public static func corrupt(_ detail: String) -> StoreError { StoreError(code: .corrupt(detail)) }

    /// The active version, for a conflict.
    public var conflictingActive: Int?? {
        if case .conflict(let active) = code { return .some(active) }
        return .none
    }

    public var description: String {
        switch code {
        case .conflict(let active):
            return "version conflict: the active version is now \(active.map(String.init) ?? "none")"
        case .duplicateToken(let name): return "a token named '\(name)' exists"
        case .corrupt(let detail): return "the store is damaged: \(detail)"
        }
    }
}

/// Where an instance stands, as the instances view shows it.
public enum InstanceState: String, Sendable, CaseIterable {
    /// It serves the store's active version.
    case inSync = "in_sync"
    /// It serves an older version and has reported no error: it is catching up.
    case behind
    /// It could not apply the active version (``InstanceReport/lastError``) and keeps serving the
    /// one it has.
    case failing
    /// No heartbeat for ``InstanceState/goneAfter``: stopped, crashed or cut off.
    case gone

    /// How often a running instance reports.
    public static let heartbeatInterval: Duration = .seconds(5)
    /// Three heartbeats missed.
    public static let goneAfter: TimeInterval = 15

    public init(_ report: InstanceReport, activeVersion: Int?, now: Date) {
        self = if now.timeIntervalSince(report.heartbeatAt) > Self.goneAfter { .gone }
            else if report.lastError != nil { .failing }
            else if let activeVersion, report.appliedVersion < activeVersion { .behind }
            else { .inSync }
    }
}

/// A duty one instance of a fleet does for all of them.
public enum LeadDuty: String, Sendable, CaseIterable {
    /// Judging progressive rollouts and advancing them.
    case rollouts

    /// The PostgreSQL advisory lock under which the duty's lead is claimed.
    var lockKey: Int64 {
        switch self {
        case .rollouts: 0x46_75_6C_63_72_75_6D_10
        }
    }
}

/// The traffic counters of one rollout target (a service, or a node) during one second of wall
/// clock time, as instances publish them and the rollout leader sums them.
public struct TrafficSecond: Sendable, Equatable {
    /// `service:NAME` or `node:SERVICE/NODE`.
    public var key: String
    /// Unix time, in seconds.
    public var second: Int64
    /// Requests by status class, then latency buckets (``FulcrumCore/TrafficSnapshot/secondsCounters``).
    public var counters: [Int32]

    /// How long published seconds are kept: a rollout window is at most a minute.
    public static let kept: Int64 = 120

    public init(key: String, second: Int64, counters: [Int32]) {
        self.key = key
        self.second = second
        self.counters = counters
    }

    static func text(_ counters: [Int32]) -> String { counters.map(String.init).joined(separator: ",") }
    static func counters(_ text: String) -> [Int32] { text.split(separator: ",").compactMap { Int32($0) } }

    /// `rows` summed per key and second.
    static func summed(_ rows: [TrafficSecond]) -> [TrafficSecond] {
        var sums: [String: TrafficSecond] = [:]
        for row in rows {
            let id = "\(row.key) \(row.second)"
            if var sum = sums[id], sum.counters.count == row.counters.count {
                for index in sum.counters.indices { sum.counters[index] &+= row.counters[index] }
                sums[id] = sum
            } else if sums[id] == nil {
                sums[id] = row
            }
        }
        return sums.values.sorted { ($0.key, $0.second) < ($1.key, $1.second) }
    }
}
