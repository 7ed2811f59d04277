import FulcrumCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The shared store: a PostgreSQL database that several Fulcrum instances (and `fulcrum`
/// commands) use at once, through postgres-nio's connection pool.
///
/// It keeps what ``SQLiteConfigStore`` keeps, with the same guarantees: every method is one
/// transaction; writes that extend the version history or the audit chain take one advisory
/// lock first, so that commits from different instances are serialised and the chain stays one
/// line; versions, audit entries and stored certificates are immutable (triggers refuse
/// `UPDATE`, `DELETE` and `TRUNCATE`). The schema is migrated on open under another advisory
/// lock, so instances starting together migrate once.
public final class PostgresConfigStore: ConfigStore {
    public let location: String
    private let client: PostgresClient
    private let running: Task<Void, Never>
    private let logger: Logger

    /// The channel commits notify (with the new version's number), which instances LISTEN on.
    private static let changeChannel = "fulcrum_config"

    /// Keys of the advisory locks (any two numbers no other application on the database uses).
    private static let migrationLock: Int64 = 0x46_75_6C_63_72_75_6D_01  // "Fulcrum" 1
    private static let writeLock: Int64 = 0x46_75_6C_63_72_75_6D_02

    /// Connects with `configuration` and brings the schema up to date. A database that does not
    /// answer is not an error here: the store is opened anyway, its operations throw
    /// ``Unreachable`` until it answers, and the schema is brought up to date by the first one
    /// that reaches it (an instance can start from its last-known-good copy meanwhile). Any other
    /// failure of the migration is thrown.
    ///
    /// - Parameter location: where the database is, for logs (never with the password).
    public init(configuration: PostgresClient.Configuration, location: String, logger: Logger = Logger(label: "fulcrum.store")) async throws {
        var configuration = configuration
        configuration.options.maximumConnections = 4
        // a dead TCP connection (a database host gone without closing it) is found by the next
        // keep-alive query rather than by the next change
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.location = location
        self.logger = logger
        self.running = Task { await client.run() }
        do {
            try await bounded {}
        } catch is Unreachable {
            logger.warning("the store does not answer; it will be used once it does", metadata: ["store": "\(location)"])
        } catch {
            running.cancel()
            throw error
        }
    }

    private let migrated = Mutex(false)

    /// Migrates the schema unless this store has done so already.
    private func migrateOnce() async throws {
        guard !migrated.withLock({ $0 }) else { return }
        try await migrate()
        migrated.withLock { $0 = true }
    }

    deinit { running.cancel() }

    /// Closes the connections; the store cannot be used afterwards.
    public func close() { running.cancel() }

    /// Schema changes, each a list of statements, applied in order and recorded by name.
    static let migrations: [(name: String, statements: [String])] = [
        ("v1", [
            """
            CREATE TABLE config_version (
                number BIGINT PRIMARY KEY, created_at BIGINT NOT NULL, actor TEXT NOT NULL, source TEXT NOT NULL,
                message TEXT NOT NULL, based_on BIGINT, document TEXT NOT NULL)
            """,
            "CREATE TABLE active_version (id INTEGER PRIMARY KEY CHECK (id = 1), number BIGINT NOT NULL REFERENCES config_version(number))",
            """
            CREATE TABLE audit_entry (
                sequence BIGINT PRIMARY KEY, time BIGINT NOT NULL, actor TEXT NOT NULL, client TEXT NOT NULL, operation TEXT NOT NULL,
                target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL, version BIGINT, previous_hash TEXT NOT NULL,
                hash TEXT NOT NULL)
            """,
            "CREATE INDEX audit_entry_time ON audit_entry(time)",
            "CREATE INDEX audit_entry_actor ON audit_entry(actor, sequence)",
            "CREATE TABLE admin_token (name TEXT PRIMARY KEY, role TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at BIGINT NOT NULL)",
            """
            CREATE TABLE stored_certificate (
                chain_sha256 TEXT PRIMARY KEY, chain_pem TEXT NOT NULL, key_pem TEXT NOT NULL, created_at BIGINT NOT NULL)
            """,
            """
            CREATE FUNCTION fulcrum_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'rows of % are immutable', TG_TABLE_NAME; END $$
            """,
        ] + ["config_version", "audit_entry", "stored_certificate"].flatMap { table in
            [
                "CREATE TRIGGER \(table)_immutable BEFORE UPDATE OR DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION fulcrum_refuse_change()",
                "CREATE TRIGGER \(table)_not_truncated BEFORE TRUNCATE ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION fulcrum_refuse_change()",
            ]
        }),
        ("v2: instances", [
            """
            CREATE TABLE instance (
                id TEXT PRIMARY KEY, host_name TEXT NOT NULL, listen TEXT NOT NULL, fulcrum_version TEXT NOT NULL,
                started_at BIGINT NOT NULL, applied_version BIGINT NOT NULL, last_error TEXT, heartbeat_at BIGINT NOT NULL)
            """,
        ]),
        ("v3: leads", [
            "CREATE TABLE fleet_lead (duty TEXT PRIMARY KEY, holder TEXT NOT NULL, renewed_at BIGINT NOT NULL)",
        ]),
        ("v4: traffic", [
            """
            CREATE TABLE traffic_second (
                instance TEXT NOT NULL, key TEXT NOT NULL, second BIGINT NOT NULL, counters TEXT NOT NULL,
                PRIMARY KEY (instance, key, second))
            """,
        ]),
    ]

    private func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS fulcrum_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM fulcrum_migration", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO fulcrum_migration (name) VALUES (\(migration.name))", logger: logger)
                logger.notice("store schema migrated", metadata: ["migration": "\(migration.name)", "store": "\(location)"])
            }
        }
    }

    /// How long an operation may wait for a connection and its answer. While the database is down
    /// or unreachable the pool keeps trying to connect and would hold a request for as long: the
    /// admin API then answers 503 (and checks tokens against the last ones read) instead.
    static let operationTimeout: Duration = .seconds(4)
    /// How long bringing the schema up to date may take (many statements, on first use).
    static let migrationTimeout: Duration = .seconds(30)

    /// The database did not answer in time.
    public struct Unreachable: Error, CustomStringConvertible {
        public var location: String
        public var limit: Duration
        public var description: String { "no answer from \(location) within \(limit)" }
    }

    /// When an operation last found the database unreachable: for ``failFastWindow`` after it,
    /// operations fail at once rather than each waiting ``operationTimeout`` (a refused change
    /// would otherwise wait twice: for its commit and for the audit entry of its refusal).
    private let unreachableSince = Mutex<ContinuousClock.Instant?>(nil)
    static let failFastWindow: Duration = .seconds(2)

    /// Runs `body`, or throws ``Unreachable`` when it has not finished within ``operationTimeout``
    /// (or at once, shortly after another operation found the database unreachable). The schema
    /// is brought up to date first if no operation has done it yet.
    private func bounded<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let now = ContinuousClock.now
        if unreachableSince.withLock({ $0.map { now - $0 < Self.failFastWindow } ?? false }) {
            throw Unreachable(location: location, limit: Self.operationTimeout)
        }
        do {
            if !migrated.withLock({ $0 }) {
                // a database that does not answer is found within the operation's time, not the migration's
                try await within(Self.operationTimeout) { [self] in try await client.query("SELECT 1", logger: logger) }
                try await within(Self.migrationTimeout) { [self] in try await migrateOnce() }
            }
            let result = try await within(Self.operationTimeout, body)
            unreachableSince.withLock { $0 = nil }
            return result
        } catch let error as Unreachable {
            unreachableSince.withLock { $0 = .now }
            throw error
        }
    }

    /// Runs `body`, or throws ``Unreachable`` once `limit` has passed. Then `body` is cancelled
    /// and left to end on its own: a task group would wait for it, and a query on a connection
    /// the server has cut does not always end when it is cancelled.
    private func within<Result: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let race = Race<Result>()
        let location = self.location
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.wait(continuation)  // before either task can finish
                race.run(
                    Task {
                        do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                    },
                    timer: Task {
                        guard (try? await Task.sleep(for: limit)) != nil else { return }
                        race.finish(.failure(Unreachable(location: location, limit: limit)))
                    })
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The caller of ``within(_:_:)``, its work and its timer: the first result (or the caller's
    /// cancellation) resumes the caller and cancels the work and the timer.
    private final class Race<Result: Sendable>: Sendable {
        private struct State {
            var caller: CheckedContinuation<Result, any Error>?
            var finished: Swift.Result<Result, any Error>?
            var tasks: [Task<Void, Never>] = []
        }

        private let state = Mutex(State())

        func wait(_ caller: CheckedContinuation<Result, any Error>) {
            let early = state.withLock { state in
                if state.finished == nil { state.caller = caller }
                return state.finished  // cancelled before it waited
            }
            if let early { caller.resume(with: early) }
        }

        func run(_ work: Task<Void, Never>, timer: Task<Void, Never>) {
            let over = state.withLock { state in
                state.tasks = [work, timer]
                return state.finished != nil
            }
            if over { work.cancel(); timer.cancel() }
        }

        func finish(_ result: Swift.Result<Result, any Error>) {
            let (caller, tasks) = state.withLock { state -> (CheckedContinuation<Result, any Error>?, [Task<Void, Never>]) in
                guard state.finished == nil else { return (nil, []) }
                state.finished = result
                defer { state.caller = nil }
                return (state.caller, state.tasks)
            }
            caller?.resume(with: result)
            for task in tasks { task.cancel() }
        }
    }

    /// Runs `body` in a transaction that holds the write lock: commits and audit entries from
    /// every instance take turns, so version numbers and the audit chain stay one line. A
    /// ``StoreError`` thrown by `body` comes out as itself (the transaction is rolled back).
    private func writeTransaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let logger = self.logger
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.writeLock))", logger: logger)
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            if let refusal = error.closureError as? StoreError { throw refusal }
            throw error
        }
    }

    // MARK: versions

    private typealias VersionRow = (Int, Int64, String, String, String, Int?, String)
    private static let versionColumns = "v.number, v.created_at, v.actor, v.source, v.message, v.based_on, v.document"

    public func activeVersion() async throws -> ConfigVersion? {
        try await bounded { [self] in
            let rows = try await client.query(
                PostgresQuery(unsafeSQL: "SELECT \(Self.versionColumns) FROM config_version v JOIN active_version a ON a.number = v.number"),
                logger: logger)
            for try await row in rows.decode(VersionRow.self) { return try Self.version(row) }
            return nil
        }
    }

    public func version(_ number: Int) async throws -> ConfigVersion? {
        try await bounded { [self] in
            var bindings = PostgresBindings()
            bindings.append(number)
            let rows = try await client.query(
                PostgresQuery(unsafeSQL: "SELECT \(Self.versionColumns) FROM config_version v WHERE v.number = $1", binds: bindings), logger: logger)
            for try await row in rows.decode(VersionRow.self) { return try Self.version(row) }
            return nil
        }
    }

    public func versions(limit: Int, before: Int?) async throws -> [ConfigVersion.Summary] {
        try await bounded { [self] in
            let rows = try await client.query(
                """
                SELECT v.number, v.created_at, v.actor, v.source, v.message, v.based_on, v.number = a.number
                FROM config_version v LEFT JOIN active_version a ON a.id = 1
                WHERE v.number < \(before ?? Int.max) ORDER BY v.number DESC LIMIT \(limit)
                """, logger: logger)
            var summaries: [ConfigVersion.Summary] = []
            for try await (number, created, actor, source, message, basedOn, active) in rows.decode((Int, Int64, String, String, String, Int?, Bool?).self) {
                summaries.append(ConfigVersion.Summary(
                    number: number, createdAt: AuditChain.date(created), actor: actor, source: try Self.source(source), message: message,
                    basedOn: basedOn, active: active ?? false))
            }
            return summaries
        }
    }

    public func commit(_ proposal: VersionProposal, audit: AuditRecord) async throws -> ConfigVersion {
        try await bounded { [self] in
            let now = AuditChain.milliseconds(Date())
            let documentText = proposal.document.jsonText()
            let logger = self.logger
            return try await writeTransaction { connection in
                var active: Int?
                for try await number in try await connection.query("SELECT number FROM active_version WHERE id = 1", logger: logger).decode(Int.self) {
                    active = number
                }
                guard active == proposal.basedOn else { throw StoreError.conflict(active: active) }
                var number = 1
                for try await latest in try await connection.query("SELECT max(number) FROM config_version", logger: logger).decode(Int?.self) {
                    number = (latest ?? 0) + 1
                }
                try await connection.query(
                    """
                    INSERT INTO config_version (number, created_at, actor, source, message, based_on, document)
                    VALUES (\(number), \(now), \(proposal.actor), \(proposal.source.rawValue), \(proposal.message), \(proposal.basedOn), \(documentText))
                    """, logger: logger)
                try await connection.query(
                    "INSERT INTO active_version (id, number) VALUES (1, \(number)) ON CONFLICT (id) DO UPDATE SET number = excluded.number",
                    logger: logger)
                _ = try await Self.append(audit, version: number, on: connection, logger: logger)
                // delivered to the listening instances when (and only if) the transaction commits
                try await connection.query("SELECT pg_notify(\(Self.changeChannel), \(String(number)))", logger: logger)
                return proposal.version(number: number, createdAt: AuditChain.date(now))
            }
        }
    }

    private static func version(_ row: VersionRow) throws -> ConfigVersion {
        let (number, created, actor, source, message, basedOn, text) = row
        let document: ConfigDocument
        do {
            document = try JSONDocumentReader.parse(text)
        } catch {
            throw StoreError.corrupt("version \(number): \(error)")
        }
        return ConfigVersion(
            number: number, createdAt: AuditChain.date(created), actor: actor, source: try Self.source(source), message: message,
            basedOn: basedOn, document: document)
    }

    private static func source(_ text: String) throws -> ChangeSource {
        guard let source = ChangeSource(rawValue: text) else { throw StoreError.corrupt("unknown change source '\(text)'") }
        return source
    }

    // MARK: audit

    @discardableResult
    public func appendAudit(_ record: AuditRecord) async throws -> AuditEntry {
        try await bounded { [self] in
            let logger = self.logger
            return try await writeTransaction { connection in
                try await Self.append(record, version: nil, on: connection, logger: logger)
            }
        }
    }

    private static func append(_ record: AuditRecord, version: Int?, on connection: PostgresConnection, logger: Logger) async throws -> AuditEntry {
        var last: (sequence: Int, hash: String)?
        let rows = try await connection.query("SELECT sequence, hash FROM audit_entry ORDER BY sequence DESC LIMIT 1", logger: logger)
        for try await (sequence, hash) in rows.decode((Int, String).self) { last = (sequence, hash) }
        let entry = AuditChain.entry(after: last, record: record, version: version)
        let stored = entry.record
        try await connection.query(
            """
            INSERT INTO audit_entry (sequence, time, actor, client, operation, target, result, detail, version, previous_hash, hash)
            VALUES (\(entry.sequence), \(AuditChain.milliseconds(stored.time)), \(stored.actor), \(stored.client), \(stored.operation),
                    \(stored.target), \(stored.result), \(stored.detail), \(version), \(entry.previousHash), \(entry.hash))
            """, logger: logger)
        return entry
    }

    private typealias AuditRow = (Int, Int64, String, String, String, String, String, String, Int?, String, String)
    private static let auditColumns = "sequence, time, actor, client, operation, target, result, detail, version, previous_hash, hash"

    public func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry] {
        try await bounded { [self] in
            var bindings = PostgresBindings()
            var conditions: [String] = []
            func condition(_ text: (Int) -> String, _ value: some PostgresNonThrowingEncodable) {
                bindings.append(value)
                conditions.append(text(bindings.count))
            }
            condition({ "sequence < $\($0)" }, query.before ?? Int.max)
            if let since = query.since { condition({ "time >= $\($0)" }, AuditChain.milliseconds(since)) }
            if let until = query.until { condition({ "time <= $\($0)" }, AuditChain.milliseconds(until)) }
            if let actor = query.actor { condition({ "actor = $\($0)" }, actor) }
            if let prefix = query.targetPrefix { condition({ "left(target, length($\($0))) = $\($0)" }, prefix) }
            bindings.append(query.limit)
            let sql = "SELECT \(Self.auditColumns) FROM audit_entry WHERE \(conditions.joined(separator: " AND ")) ORDER BY sequence DESC LIMIT $\(bindings.count)"
            var entries: [AuditEntry] = []
            for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).decode(AuditRow.self) {
                entries.append(Self.entry(row))
            }
            return entries
        }
    }

    public func verifyAuditChain() async throws -> AuditVerification {
        try await bounded { [self] in
            var verifier = AuditChain.Verifier()
            let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT \(Self.auditColumns) FROM audit_entry ORDER BY sequence"), logger: logger)
            for try await row in rows.decode(AuditRow.self) where !verifier.check(Self.entry(row)) { break }
            return verifier.result
        }
    }

    private static func entry(_ row: AuditRow) -> AuditEntry {
        let (sequence, time, actor, client, operation, target, result, detail, version, previous, hash) = row
        return AuditEntry(
            sequence: sequence,
            record: AuditRecord(
                time: AuditChain.date(time), actor: actor, client: client, operation: operation, target: target, result: result, detail: detail),
            version: version, previousHash: previous, hash: hash)
    }

    // MARK: tokens

    public func tokens() async throws -> [StoredToken] {
        try await bounded { [self] in
            var tokens: [StoredToken] = []
            let rows = try await client.query("SELECT name, role, secret_hash, created_at FROM admin_token ORDER BY name", logger: logger)
            for try await (name, roleText, hash, created) in rows.decode((String, String, String, Int64).self) {
                guard let role = TokenRole(rawValue: roleText) else { throw StoreError.corrupt("unknown token role '\(roleText)'") }
                tokens.append(StoredToken(name: name, role: role, secretHash: hash, createdAt: AuditChain.date(created)))
            }
            return tokens
        }
    }

    public func addToken(_ token: StoredToken) async throws {
        try await bounded { [self] in
            let rows = try await client.query(
                """
                INSERT INTO admin_token (name, role, secret_hash, created_at)
                VALUES (\(token.name), \(token.role.rawValue), \(token.secretHash), \(AuditChain.milliseconds(token.createdAt)))
                ON CONFLICT (name) DO NOTHING RETURNING name
                """, logger: logger)
            var inserted = false
            for try await _ in rows.decode(String.self) { inserted = true }
            if !inserted { throw StoreError.duplicateToken(token.name) }
        }
    }

    public func removeToken(named name: String) async throws -> Bool {
        try await bounded { [self] in
            var removed = false
            for try await _ in try await client.query("DELETE FROM admin_token WHERE name = \(name) RETURNING name", logger: logger).decode(String.self) {
                removed = true
            }
            return removed
        }
    }

    // MARK: certificates

    public func saveCertificate(_ bundle: CertificateBundle, chainSHA256: String) async throws {
        try await bounded { [self] in
            try await client.query(
                """
                INSERT INTO stored_certificate (chain_sha256, chain_pem, key_pem, created_at)
                VALUES (\(chainSHA256), \(bundle.chainPEM), \(bundle.keyPEM), \(AuditChain.milliseconds(Date()))) ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    public func certificates(_ digests: Set<String>) async throws -> [String: CertificateBundle] {
        try await bounded { [self] in
            guard !digests.isEmpty else { return [:] }
            var found: [String: CertificateBundle] = [:]
            let rows = try await client.query(
                "SELECT chain_sha256, chain_pem, key_pem FROM stored_certificate WHERE chain_sha256 = ANY(\(Array(digests)))", logger: logger)
            for try await (digest, chain, key) in rows.decode((String, String, String).self) {
                found[digest] = CertificateBundle(chainPEM: chain, keyPEM: key)
            }
            return found
        }
    }

    // MARK: instances

    public func heartbeat(_ instance: InstanceReport) async throws {
        try await bounded { [self] in
            try await client.query(
                """
                INSERT INTO instance (id, host_name, listen, fulcrum_version, started_at, applied_version, last_error, heartbeat_at)
                VALUES (\(instance.id), \(instance.hostName), \(instance.listen.joined(separator: " ")), \(instance.fulcrumVersion),
                        \(AuditChain.milliseconds(instance.startedAt)), \(instance.appliedVersion), \(instance.lastError),
                        \(AuditChain.milliseconds(instance.heartbeatAt)))
                ON CONFLICT (id) DO UPDATE SET listen = excluded.listen, applied_version = excluded.applied_version,
                    last_error = excluded.last_error, heartbeat_at = excluded.heartbeat_at
                """, logger: logger)
        }
    }

    public func instances() async throws -> [InstanceReport] {
        try await bounded { [self] in
            var reports: [InstanceReport] = []
            let rows = try await client.query(
                """
                SELECT id, host_name, listen, fulcrum_version, started_at, applied_version, last_error, heartbeat_at
                FROM instance ORDER BY heartbeat_at DESC, id
                """, logger: logger)
            for try await (id, host, listen, version, started, applied, error, beat) in rows.decode(
                (String, String, String, String, Int64, Int, String?, Int64).self)
            {
                reports.append(InstanceReport(
                    id: id, hostName: host, listen: listen.split(separator: " ").map(String.init), fulcrumVersion: version,
                    startedAt: AuditChain.date(started), appliedVersion: applied, lastError: error, heartbeatAt: AuditChain.date(beat)))
            }
            return reports
        }
    }

    // MARK: fleet traffic

    public func publishTraffic(instance: String, _ seconds: [TrafficSecond]) async throws {
        guard let newest = seconds.map(\.second).max() else { return }
        try await bounded { [self] in
            try await client.withTransaction(logger: logger) { connection in
                for second in seconds {
                    try await connection.query(
                        """
                        INSERT INTO traffic_second (instance, key, second, counters)
                        VALUES (\(instance), \(second.key), \(second.second), \(TrafficSecond.text(second.counters)))
                        ON CONFLICT (instance, key, second) DO UPDATE SET counters = excluded.counters
                        """, logger: logger)
                }
                try await connection.query("DELETE FROM traffic_second WHERE second < \(newest - TrafficSecond.kept)", logger: logger)
            }
        }
    }

    public func fleetTraffic(keys: [String], since: Int64) async throws -> [TrafficSecond] {
        guard !keys.isEmpty else { return [] }
        return try await bounded { [self] in
            var rows: [TrafficSecond] = []
            let result = try await client.query(
                "SELECT key, second, counters FROM traffic_second WHERE key = ANY(\(keys)) AND second >= \(since)", logger: logger)
            for try await (key, second, counters) in result.decode((String, Int64, String).self) {
                rows.append(TrafficSecond(key: key, second: second, counters: TrafficSecond.counters(counters)))
            }
            return TrafficSecond.summed(rows)
        }
    }

    // MARK: leadership

    /// How often instances claim or renew a lead, and how long a lead lasts without renewal: a
    /// leader that stopped, crashed or lost the database is replaced within about 8 s.
    static let leadRenewal: Duration = .seconds(2)
    static let leadTerm: Int64 = 6_000

    /// This store object's identity in the leads table (one per process).
    private let leaderID = UUID().uuidString.lowercased()

    /// The lead is a row per duty naming its holder and when it last renewed it. Every instance
    /// claims it every 2 s in a short transaction under the duty's advisory lock (so two claims
    /// never interleave): the holder renews it, and anyone takes it over once its term has run
    /// out. No connection is held between claims, so a database outage or a stop never waits on
    /// one; a leader that cannot renew stops `work` at once and the others wait out its term; one
    /// that stops hands the lead over by removing its row.
    public func whileLeading(_ duty: LeadDuty, _ work: @escaping @Sendable () async -> Void) async {
        var running: Task<Void, Never>?
        while !Task.isCancelled {
            let leads = (try? await claimLead(duty)) ?? false
            if leads, running == nil {
                logger.notice("leading \(duty.rawValue) for the fleet", metadata: ["store": "\(location)"])
                running = Task { await work() }
            } else if !leads, let task = running {
                task.cancel()
                running = nil
                logger.notice("no longer leading \(duty.rawValue)", metadata: ["store": "\(location)"])
            }
            try? await Task.sleep(for: Self.leadRenewal)
        }
        if let running {
            running.cancel()
            await running.value
            // handed over at once rather than after the term: the stop is not cancelled itself
            await Task { try? await releaseLead(duty) }.value
        }
    }

    private func releaseLead(_ duty: LeadDuty) async throws {
        let me = leaderID
        try await bounded { [self] in
            try await client.query("DELETE FROM fleet_lead WHERE duty = \(duty.rawValue) AND holder = \(me)", logger: logger)
        }
    }

    /// Claims or renews the lead of `duty`; whether this process holds it now.
    private func claimLead(_ duty: LeadDuty) async throws -> Bool {
        let me = leaderID
        return try await bounded { [self] in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(duty.lockKey))", logger: logger)
                let now = AuditChain.milliseconds(Date())
                var holder: (String, Int64)?
                for try await row in try await connection.query(
                    "SELECT holder, renewed_at FROM fleet_lead WHERE duty = \(duty.rawValue)", logger: logger
                ).decode((String, Int64).self) { holder = row }
                if let (current, renewed) = holder, current != me, now - renewed < Self.leadTerm { return false }
                try await connection.query(
                    """
                    INSERT INTO fleet_lead (duty, holder, renewed_at) VALUES (\(duty.rawValue), \(me), \(now))
                    ON CONFLICT (duty) DO UPDATE SET holder = excluded.holder, renewed_at = excluded.renewed_at
                    """, logger: logger)
                return true
            }
        }
    }

    // MARK: notifications

    public func watchForChanges(_ changed: @escaping @Sendable () async -> Void) async {
        var delay = 0.1
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.changeChannel) { notifications in
                        delay = 0.1
                        await changed()  // whatever was committed while nobody listened
                        for try await _ in notifications { await changed() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("lost the store's change notifications; reconnecting", metadata: ["store": "\(location)", "error": "\(error)"])
            }
            // jittered exponential backoff, so that instances do not reconnect in step
            try? await Task.sleep(for: .seconds(delay * Double.random(in: 0.5...1.5)))
            delay = min(delay * 2, 10)
        }
    }
}
