import FulcrumCore
import Foundation
import GRDB

/// The embedded store: one SQLite file (through GRDB) in WAL mode with full synchronous commits, so
/// that a version is on disk when ``commit(_:audit:)`` returns and a process killed at any moment
/// leaves either the whole change or none of it. Several processes may open the same file (the
/// server and a `fulcrum` command); writes take the database's write lock at their start
/// (`BEGIN IMMEDIATE`) and wait up to ``busyTimeout`` for it.
///
/// Versions, audit entries and stored certificates are immutable: triggers refuse to update or
/// delete them.
///
/// The file holds the private keys of uploaded certificates, so it is created readable by its
/// owner only (mode 0600), and an existing file that others may read is restricted to that when
/// it is opened; SQLite gives its `-wal` and `-shm` files the database file's mode.
public final class SQLiteConfigStore: ConfigStore {
    /// How long a write waits for another process's write to finish.
    public static let busyTimeout: TimeInterval = 10

    private let database: DatabasePool
    /// The file this store was opened from.
    public let path: String
    public var location: String { path }

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(Self.busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        self.path = path
        try Self.restrictToOwner(path)
        self.database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    /// The store file could not be created or restricted to its owner.
    public struct PermissionError: Error, CustomStringConvertible {
        public var description: String
    }

    private static func restrictToOwner(_ path: String) throws(PermissionError) {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw PermissionError(description: "cannot open the store \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return }
        if status.st_mode & 0o077 != 0, fchmod(descriptor, 0o600) != 0 {
            throw PermissionError(description: "cannot make the store \(path) readable by its owner only: \(String(cString: strerror(errno)))")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE config_version (
                    number INTEGER PRIMARY KEY,
                    created_at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    source TEXT NOT NULL,
                    message TEXT NOT NULL,
                    based_on INTEGER,
                    document TEXT NOT NULL
                );
                CREATE TABLE active_version (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    number INTEGER NOT NULL REFERENCES config_version(number)
                );
                CREATE TABLE audit_entry (
                    sequence INTEGER PRIMARY KEY,
                    time INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    client TEXT NOT NULL,
                    operation TEXT NOT NULL,
                    target TEXT NOT NULL,
                    result TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    version INTEGER,
                    previous_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                CREATE INDEX audit_entry_time ON audit_entry(time);
                CREATE INDEX audit_entry_actor ON audit_entry(actor, sequence);
                CREATE TABLE admin_token (
                    name TEXT PRIMARY KEY,
                    role TEXT NOT NULL,
                    secret_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TRIGGER config_version_no_update BEFORE UPDATE ON config_version
                    BEGIN SELECT RAISE(ABORT, 'configuration versions are immutable'); END;
                CREATE TRIGGER config_version_no_delete BEFORE DELETE ON config_version
                    BEGIN SELECT RAISE(ABORT, 'configuration versions are immutable'); END;
                CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
                    BEGIN SELECT RAISE(ABORT, 'audit entries are immutable'); END;
                CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
                    BEGIN SELECT RAISE(ABORT, 'audit entries are immutable'); END;
                """)
        }
        migrator.registerMigration("v2: stored certificates") { db in
            try db.execute(sql: """
                CREATE TABLE stored_certificate (
                    chain_sha256 TEXT PRIMARY KEY,
                    chain_pem TEXT NOT NULL,
                    key_pem TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TRIGGER stored_certificate_no_update BEFORE UPDATE ON stored_certificate
                    BEGIN SELECT RAISE(ABORT, 'stored certificates are immutable'); END;
                CREATE TRIGGER stored_certificate_no_delete BEFORE DELETE ON stored_certificate
                    BEGIN SELECT RAISE(ABORT, 'stored certificates are immutable'); END;
                """)
        }
        migrator.registerMigration("v3: instances") { db in
            try db.execute(sql: """
                CREATE TABLE instance (
                    id TEXT PRIMARY KEY, host_name TEXT NOT NULL, listen TEXT NOT NULL, fulcrum_version TEXT NOT NULL,
                    started_at INTEGER NOT NULL, applied_version INTEGER NOT NULL, last_error TEXT, heartbeat_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v4: traffic") { db in
            try db.execute(sql: """
                CREATE TABLE traffic_second (
                    instance TEXT NOT NULL, key TEXT NOT NULL, second INTEGER NOT NULL, counters TEXT NOT NULL,
                    PRIMARY KEY (instance, key, second)
                );
                """)
        }
        return migrator
    }

    // MARK: versions

    public func activeVersion() async throws -> ConfigVersion? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT v.* FROM config_version v JOIN active_version a ON a.number = v.number")
                .map(Self.version(from:))
        }
    }

    public func version(_ number: Int) async throws -> ConfigVersion? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM config_version WHERE number = ?", arguments: [number]).map(Self.version(from:))
        }
    }

    public func versions(limit: Int, before: Int?) async throws -> [ConfigVersion.Summary] {
        try await database.read { db in
            let active = try Int.fetchOne(db, sql: "SELECT number FROM active_version WHERE id = 1")
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT number, created_at, actor, source, message, based_on FROM config_version
                    WHERE number < ? ORDER BY number DESC LIMIT ?
                    """,
                arguments: [before ?? Int.max, limit])
            return try rows.map { row in
                ConfigVersion.Summary(
                    number: row["number"], createdAt: AuditChain.date(row["created_at"]), actor: row["actor"],
                    source: try Self.source(row["source"]), message: row["message"], basedOn: row["based_on"],
                    active: row["number"] == active)
            }
        }
    }

    public func commit(_ proposal: VersionProposal, audit: AuditRecord) async throws -> ConfigVersion {
        let now = Date()
        let documentText = proposal.document.jsonText()
        return try await database.writeWithoutTransaction { db in
            var committed: ConfigVersion?
            try db.inTransaction(.immediate) {
                let active = try Int.fetchOne(db, sql: "SELECT number FROM active_version WHERE id = 1")
                guard active == proposal.basedOn else { throw StoreError.conflict(active: active) }
                let number = (try Int.fetchOne(db, sql: "SELECT max(number) FROM config_version") ?? 0) + 1
                try db.execute(
                    sql: """
                        INSERT INTO config_version (number, created_at, actor, source, message, based_on, document)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        number, AuditChain.milliseconds(now), proposal.actor, proposal.source.rawValue, proposal.message,
                        proposal.basedOn, documentText,
                    ])
                try db.execute(
                    sql: "INSERT INTO active_version (id, number) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET number = excluded.number",
                    arguments: [number])
                _ = try Self.append(audit, version: number, in: db)
                committed = proposal.version(number: number, createdAt: AuditChain.date(AuditChain.milliseconds(now)))
                return .commit
            }
            return committed!
        }
    }

    private static func version(from row: Row) throws -> ConfigVersion {
        let text: String = row["document"]
        let document: ConfigDocument
        do {
            document = try JSONDocumentReader.parse(text)
        } catch {
            throw StoreError.corrupt("version \(row["number"] as Int): \(error)")
        }
        return ConfigVersion(
            number: row["number"], createdAt: AuditChain.date(row["created_at"]), actor: row["actor"], source: try source(row["source"]),
            message: row["message"], basedOn: row["based_on"], document: document)
    }

    private static func source(_ text: String) throws -> ChangeSource {
        guard let source = ChangeSource(rawValue: text) else { throw StoreError.corrupt("unknown change source '\(text)'") }
        return source
    }

    // MARK: audit

    @discardableResult
    public func appendAudit(_ record: AuditRecord) async throws -> AuditEntry {
        try await database.writeWithoutTransaction { db in
            var entry: AuditEntry?
            try db.inTransaction(.immediate) {
                entry = try Self.append(record, version: nil, in: db)
                return .commit
            }
            return entry!
        }
    }

    private static func append(_ record: AuditRecord, version: Int?, in db: Database) throws -> AuditEntry {
        let last = try Row.fetchOne(db, sql: "SELECT sequence, hash FROM audit_entry ORDER BY sequence DESC LIMIT 1")
            .map { (sequence: $0["sequence"] as Int, hash: $0["hash"] as String) }
        let entry = AuditChain.entry(after: last, record: record, version: version)
        try db.execute(
            sql: """
                INSERT INTO audit_entry (sequence, time, actor, client, operation, target, result, detail, version, previous_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                entry.sequence, AuditChain.milliseconds(entry.record.time), entry.record.actor, entry.record.client, entry.record.operation,
                entry.record.target, entry.record.result, entry.record.detail, version, entry.previousHash, entry.hash,
            ])
        return entry
    }

    public func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry] {
        var conditions = ["sequence < ?"]
        var arguments: StatementArguments = [query.before ?? Int.max]
        if let since = query.since {
            conditions.append("time >= ?")
            _ = arguments.append(contentsOf: [AuditChain.milliseconds(since)])
        }
        if let until = query.until {
            conditions.append("time <= ?")
            _ = arguments.append(contentsOf: [AuditChain.milliseconds(until)])
        }
        if let actor = query.actor {
            conditions.append("actor = ?")
            _ = arguments.append(contentsOf: [actor])
        }
        if let prefix = query.targetPrefix {
            conditions.append("substr(target, 1, length(?)) = ?")
            _ = arguments.append(contentsOf: [prefix, prefix])
        }
        _ = arguments.append(contentsOf: [query.limit])
        let sql = "SELECT * FROM audit_entry WHERE \(conditions.joined(separator: " AND ")) ORDER BY sequence DESC LIMIT ?"
        let finalArguments = arguments
        return try await database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: finalArguments).map(Self.entry(from:))
        }
    }

    public func verifyAuditChain() async throws -> AuditVerification {
        try await database.read { db in
            var verifier = AuditChain.Verifier()
            let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit_entry ORDER BY sequence")
            while let row = try cursor.next(), verifier.check(Self.entry(from: row)) {}
            return verifier.result
        }
    }

    private static func entry(from row: Row) -> AuditEntry {
        AuditEntry(
            sequence: row["sequence"],
            record: AuditRecord(
                time: AuditChain.date(row["time"]), actor: row["actor"], client: row["client"], operation: row["operation"],
                target: row["target"], result: row["result"], detail: row["detail"]),
            version: row["version"], previousHash: row["previous_hash"], hash: row["hash"])
    }

    // MARK: tokens

    public func tokens() async throws -> [StoredToken] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM admin_token ORDER BY name").map { row in
                let roleText: String = row["role"]
                guard let role = TokenRole(rawValue: roleText) else { throw StoreError.corrupt("unknown token role '\(roleText)'") }
                return StoredToken(name: row["name"], role: role, secretHash: row["secret_hash"], createdAt: AuditChain.date(row["created_at"]))
            }
        }
    }

    public func addToken(_ token: StoredToken) async throws {
        try await database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM admin_token WHERE name = ?", arguments: [token.name]) == true {
                throw StoreError.duplicateToken(token.name)
            }
            try db.execute(
                sql: "INSERT INTO admin_token (name, role, secret_hash, created_at) VALUES (?, ?, ?, ?)",
                arguments: [token.name, token.role.rawValue, token.secretHash, AuditChain.milliseconds(token.createdAt)])
        }
    }

    public func removeToken(named name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM admin_token WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    // MARK: certificates

    public func saveCertificate(_ bundle: CertificateBundle, chainSHA256: String) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO stored_certificate (chain_sha256, chain_pem, key_pem, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [chainSHA256, bundle.chainPEM, bundle.keyPEM, AuditChain.milliseconds(Date())])
        }
    }

    public func certificates(_ digests: Set<String>) async throws -> [String: CertificateBundle] {
        guard !digests.isEmpty else { return [:] }
        return try await database.read { db in
            var found: [String: CertificateBundle] = [:]
            for digest in digests {
                if let row = try Row.fetchOne(db, sql: "SELECT chain_pem, key_pem FROM stored_certificate WHERE chain_sha256 = ?", arguments: [digest]) {
                    found[digest] = CertificateBundle(chainPEM: row["chain_pem"], keyPEM: row["key_pem"])
                }
            }
            return found
        }
    }

    /// A SQLite store serves one host, where one instance runs: it leads every duty.
    public func whileLeading(_ duty: LeadDuty, _ work: @escaping @Sendable () async -> Void) async {
        await work()
    }

    /// SQLite has no notifications between processes: the caller's polling finds changes.
    public func watchForChanges(_ changed: @escaping @Sendable () async -> Void) async {}

    // MARK: instances

    public func heartbeat(_ instance: InstanceReport) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO instance (id, host_name, listen, fulcrum_version, started_at, applied_version, last_error, heartbeat_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET listen = excluded.listen, applied_version = excluded.applied_version,
                        last_error = excluded.last_error, heartbeat_at = excluded.heartbeat_at
                    """,
                arguments: [
                    instance.id, instance.hostName, instance.listen.joined(separator: " "), instance.fulcrumVersion,
                    AuditChain.milliseconds(instance.startedAt), instance.appliedVersion, instance.lastError,
                    AuditChain.milliseconds(instance.heartbeatAt),
                ])
        }
    }

    public func instances() async throws -> [InstanceReport] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM instance ORDER BY heartbeat_at DESC, id").map { row in
                InstanceReport(
                    id: row["id"], hostName: row["host_name"], listen: (row["listen"] as String).split(separator: " ").map(String.init),
                    fulcrumVersion: row["fulcrum_version"], startedAt: AuditChain.date(row["started_at"]), appliedVersion: row["applied_version"],
                    lastError: row["last_error"], heartbeatAt: AuditChain.date(row["heartbeat_at"]))
            }
        }
    }

    // MARK: fleet traffic

    public func publishTraffic(instance: String, _ seconds: [TrafficSecond]) async throws {
        try await database.write { db in
            for second in seconds {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO traffic_second (instance, key, second, counters) VALUES (?, ?, ?, ?)",
                    arguments: [instance, second.key, second.second, TrafficSecond.text(second.counters)])
            }
            let oldest = (seconds.map(\.second).max() ?? Int64(Date().timeIntervalSince1970)) - TrafficSecond.kept
            try db.execute(sql: "DELETE FROM traffic_second WHERE second < ?", arguments: [oldest])
        }
    }

    public func fleetTraffic(keys: [String], since: Int64) async throws -> [TrafficSecond] {
        guard !keys.isEmpty else { return [] }
        return try await database.read { db in
            let marks = Array(repeating: "?", count: keys.count).joined(separator: ",")
            var arguments = StatementArguments(keys)
            _ = arguments.append(contentsOf: [since])
            let rows = try Row.fetchAll(db, sql: "SELECT key, second, counters FROM traffic_second WHERE key IN (\(marks)) AND second >= ?", arguments: arguments)
            return TrafficSecond.summed(rows.map { TrafficSecond(key: $0["key"], second: $0["second"], counters: TrafficSecond.counters($0["counters"])) })
        }
    }
}
