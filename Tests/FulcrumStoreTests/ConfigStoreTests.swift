import Foundation
import FulcrumCore
import GRDB
import PostgresNIO
import TestPostgres
import Testing
@testable import FulcrumStore

/// The two stores Fulcrum has, which must behave alike.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A new, empty store of one kind for one test: a SQLite file in a new temporary directory, or a
/// new database on the test process's PostgreSQL server. ``open()`` gives another handle on the
/// same store (its own connections, as a second process would have); ``execute(_:)`` runs SQL
/// behind the store's back, as someone tampering with it would.
final class TemporaryStore: @unchecked Sendable {
    let kind: StoreKind
    let directory: URL
    var path: String { directory.appendingPathComponent("fulcrum.db").path }
    private(set) var postgres: (server: PostgresServer, configuration: PostgresClient.Configuration)?
    private var opened: [PostgresConfigStore] = []

    init(_ kind: StoreKind = .sqlite) throws {
        self.kind = kind
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if kind == .postgres {
            let server = try PostgresServer.shared()
            postgres = (server, try server.createDatabase().configuration)
        }
    }

    func open() async throws -> any ConfigStore {
        guard let postgres else { return try SQLiteConfigStore(path: path) }
        let store = try await PostgresConfigStore(configuration: postgres.configuration, location: "test")
        opened.append(store)
        return store
    }

    /// Runs `sql` on the store directly; whether the database accepted it.
    func execute(_ sql: String) async throws -> Bool {
        if let postgres { return try postgres.server.execute(sql, in: postgres.configuration.database ?? "").succeeded }
        let raw = try DatabaseQueue(path: path)
        do {
            try await raw.write { try $0.execute(sql: sql) }
            return true
        } catch is DatabaseError {
            return false
        }
    }

    /// Lets rows of `table` be edited and removed (the triggers that refuse it are dropped).
    func allowEditing(_ table: String) async throws {
        let sql = switch kind {
        case .sqlite: "DROP TRIGGER \(table)_no_update; DROP TRIGGER \(table)_no_delete"
        case .postgres: "ALTER TABLE \(table) DISABLE TRIGGER USER"
        }
        #expect(try await execute(sql))
    }

    deinit {
        for store in opened { store.close() }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// What every store must do, run against SQLite and PostgreSQL alike.
@Suite struct ConfigStoreTests {
    static func document(port: Int) -> ConfigDocument {
        .mapping([
            .init("listen", .list([.mapping([.init("port", .int(port))])])),
            .init("services", .mapping([.init("web", .mapping([.init("nodes", .list([]))]))])),
        ])
    }

    static func record(_ operation: String, actor: String = "alice", target: String = "config", result: String = "ok") -> AuditRecord {
        AuditRecord(actor: actor, client: "127.0.0.1", operation: operation, target: target, result: result, detail: "")
    }

    @Test(arguments: StoreKind.allCases) func versionsAreNumberedChainedAndSurviveReopening(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        #expect(try await store.activeVersion() == nil)
        let first = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "import", basedOn: nil),
            audit: Self.record("config import", actor: "file"))
        let second = try await store.commit(
            VersionProposal(document: Self.document(port: 2), actor: "alice", source: .api, message: "port 2", basedOn: 1),
            audit: Self.record("PUT /api/v1/config"))
        #expect(first.number == 1 && second.number == 2 && second.basedOn == 1)

        let reopened = try await temporary.open()
        let active = try #require(try await reopened.activeVersion())
        #expect(active == second)
        #expect(try await reopened.version(1)?.document == Self.document(port: 1))
        let summaries = try await reopened.versions(limit: 10, before: nil)
        #expect(summaries.map(\.number) == [2, 1])
        #expect(summaries.map(\.active) == [true, false])
        #expect(summaries[1].source == .file && summaries[0].message == "port 2")
        #expect(try await reopened.versions(limit: 10, before: 2).map(\.number) == [1])
        let audit = try await reopened.auditEntries(AuditQuery())
        #expect(audit.map(\.version) == [2, 1])
    }

    @Test(arguments: StoreKind.allCases) func aChangeBasedOnAnOldVersionIsRefusedAndStoresNothing(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "", basedOn: nil),
            audit: Self.record("import"))
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 2), actor: "bob", source: .api, message: "", basedOn: 1),
            audit: Self.record("change", actor: "bob"))
        await #expect {
            _ = try await store.commit(
                VersionProposal(document: Self.document(port: 3), actor: "alice", source: .api, message: "", basedOn: 1),
                audit: Self.record("change"))
        } throws: { error in
            (error as? StoreError)?.conflictingActive == .some(2)
        }
        #expect(try await store.activeVersion()?.number == 2)
        #expect(try await store.versions(limit: 10, before: nil).count == 2)
        #expect(try await store.auditEntries(AuditQuery()).count == 2)
        // A second import into a store that has versions is a conflict too.
        await #expect(throws: StoreError.self) {
            _ = try await store.commit(
                VersionProposal(document: Self.document(port: 4), actor: "file", source: .file, message: "", basedOn: nil),
                audit: Self.record("import"))
        }
    }

    @Test(arguments: StoreKind.allCases) func concurrentChangesFromTheSameBaseLetExactlyOneWin(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "", basedOn: nil),
            audit: Self.record("import"))
        let other = try await temporary.open()  // a second connection pool, as a second process would have
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                let target = index.isMultiple(of: 2) ? store : other
                group.addTask {
                    (try? await target.commit(
                        VersionProposal(document: Self.document(port: 100 + index), actor: "racer", source: .api, message: "", basedOn: 1),
                        audit: Self.record("change"))) != nil
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await store.activeVersion()?.number == 2)
    }

    @Test(arguments: StoreKind.allCases) func storedVersionsAndAuditEntriesCannotBeEditedInPlace(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "", basedOn: nil),
            audit: Self.record("import"))
        #expect(try await !temporary.execute("UPDATE config_version SET message = 'x'"))
        #expect(try await !temporary.execute("DELETE FROM audit_entry"))
        if kind == .postgres { #expect(try await !temporary.execute("TRUNCATE audit_entry")) }
        #expect(try await store.auditEntries(AuditQuery()).count == 1)
    }

    @Test(arguments: StoreKind.allCases) func storedCertificatesAreKeptByDigestOnceAndCannotBeEditedOrRemoved(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        let first = CertificateBundle(chainPEM: "chain one", keyPEM: "key one")
        try await store.saveCertificate(first, chainSHA256: "aa")
        // the same digest again keeps the first upload: a digest names one chain, hence one key
        try await store.saveCertificate(CertificateBundle(chainPEM: "chain one", keyPEM: "other"), chainSHA256: "aa")
        #expect(try await store.certificates(["aa", "bb"]) == ["aa": first])
        #expect(try await temporary.open().certificates(["aa"]) == ["aa": first])
        #expect(try await !temporary.execute("UPDATE stored_certificate SET key_pem = 'x'"))
        #expect(try await !temporary.execute("DELETE FROM stored_certificate"))
        #expect("\(first)".contains("key withheld") && !"\(first)".contains("key one"))
    }

    @Test(arguments: StoreKind.allCases) func instancesReportThemselvesAndTheirHeartbeatIsKeptOnePerInstance(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var first = InstanceReport(
            id: "one", hostName: "gw1", listen: ["0.0.0.0:80", "0.0.0.0:443"], fulcrumVersion: "1.0", startedAt: start, appliedVersion: 3,
            lastError: nil, heartbeatAt: start)
        try await store.heartbeat(first)
        try await store.heartbeat(InstanceReport(
            id: "two", hostName: "gw2", listen: ["0.0.0.0:80"], fulcrumVersion: "1.0", startedAt: start, appliedVersion: 2,
            lastError: "cannot resolve 'db'", heartbeatAt: start.addingTimeInterval(1)))
        first.appliedVersion = 4
        first.heartbeatAt = start.addingTimeInterval(5)
        try await store.heartbeat(first)
        let reports = try await temporary.open().instances()
        #expect(reports.map(\.id) == ["one", "two"])
        #expect(reports.first == first)
        #expect(reports.last?.lastError == "cannot resolve 'db'")
    }

    @Test(arguments: StoreKind.allCases) func trafficPublishedByInstancesIsSummedPerKeyAndSecondAndOldSecondsAreForgotten(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        let now: Int64 = 1_800_000_000
        try await store.publishTraffic(instance: "one", [
            TrafficSecond(key: "service:v2", second: now - 1, counters: [0, 5, 0, 0, 1]),
            TrafficSecond(key: "service:v2", second: now, counters: [0, 3, 0, 0, 0]),
            TrafficSecond(key: "service:web", second: now, counters: [0, 9, 0, 0, 0]),
        ])
        try await store.publishTraffic(instance: "two", [TrafficSecond(key: "service:v2", second: now, counters: [0, 1, 0, 0, 4])])
        // a second published again replaces what that instance said of it
        try await store.publishTraffic(instance: "two", [TrafficSecond(key: "service:v2", second: now, counters: [0, 2, 0, 0, 4])])
        #expect(try await temporary.open().fleetTraffic(keys: ["service:v2"], since: now - 1) == [
            TrafficSecond(key: "service:v2", second: now - 1, counters: [0, 5, 0, 0, 1]),
            TrafficSecond(key: "service:v2", second: now, counters: [0, 5, 0, 0, 4]),
        ])
        #expect(try await store.fleetTraffic(keys: ["service:v2"], since: now).count == 1)
        try await store.publishTraffic(instance: "one", [TrafficSecond(key: "service:web", second: now + TrafficSecond.kept + 1, counters: [0, 1, 0, 0, 0])])
        #expect(try await store.fleetTraffic(keys: ["service:v2", "service:web"], since: 0).map(\.second) == [now + TrafficSecond.kept + 1])
    }

    @Test func anInstanceIsGoneAfterThreeMissedHeartbeatsFailingWithAnErrorBehindWhileCatchingUp() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let report = InstanceReport(
            id: "x", hostName: "h", listen: [], fulcrumVersion: "1", startedAt: now, appliedVersion: 5, lastError: nil, heartbeatAt: now.addingTimeInterval(-4))
        #expect(InstanceState(report, activeVersion: 5, now: now) == .inSync)
        #expect(InstanceState(report, activeVersion: 6, now: now) == .behind)
        var failing = report
        failing.lastError = "no"
        #expect(InstanceState(failing, activeVersion: 6, now: now) == .failing)
        #expect(InstanceState(report, activeVersion: 5, now: now.addingTimeInterval(12)) == .gone)
    }

    @Test func instancesStartingTogetherMigrateThePostgreSQLSchemaOnce() async throws {
        let temporary = try TemporaryStore(.postgres)
        let configuration = try #require(temporary.postgres?.configuration)
        let stores = try await withThrowingTaskGroup(of: PostgresConfigStore.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresConfigStore(configuration: configuration, location: "test") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        defer { for store in stores { store.close() } }
        #expect(stores.count == 4)
        // each migration once
        let migrations = try temporary.postgres?.server.execute("SELECT count(*), count(DISTINCT name) FROM fulcrum_migration", in: configuration.database ?? "")
        let count = PostgresConfigStore.migrations.count
        #expect(migrations?.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(count)|\(count)")
        // all four use the one schema
        _ = try await stores[0].appendAudit(Self.record("from the first"))
        #expect(try await stores[3].auditEntries(AuditQuery()).map(\.record.operation) == ["from the first"])
    }

    @Test func theSQLiteFileIsReadableByItsOwnerOnly() async throws {
        let temporary = try TemporaryStore()
        _ = try await temporary.open()
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode(temporary.path) == 0o600)
        // a store made before (or copied) with wider permissions is restricted when opened
        let old = temporary.directory.appendingPathComponent("old.db").path
        #expect(FileManager.default.createFile(atPath: old, contents: nil, attributes: [.posixPermissions: 0o644]))
        _ = try SQLiteConfigStore(path: old)
        #expect(try mode(old) == 0o600)
    }

    @Test(arguments: StoreKind.allCases) func theAuditChainDetectsAnEditedEntry(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        for index in 1...5 { try await store.appendAudit(Self.record("operation \(index)")) }
        let intact = try await store.verifyAuditChain()
        #expect(intact.isIntact && intact.entries == 5)
        #expect(intact.headHash == (try await store.auditEntries(AuditQuery(limit: 1)).first?.hash))

        try await temporary.allowEditing("audit_entry")
        #expect(try await temporary.execute("UPDATE audit_entry SET result = 'ok, honestly' WHERE sequence = 3"))
        let broken = try await store.verifyAuditChain()
        #expect(broken.firstBroken == 3)
        #expect(broken.problem == "its content does not match its hash")
    }

    @Test(arguments: StoreKind.allCases) func theAuditChainDetectsARemovedEntry(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        for index in 1...4 { try await store.appendAudit(Self.record("operation \(index)")) }
        try await temporary.allowEditing("audit_entry")
        #expect(try await temporary.execute("DELETE FROM audit_entry WHERE sequence = 2"))
        let broken = try await store.verifyAuditChain()
        #expect(broken.firstBroken == 3)
        #expect(broken.problem == "entry 2 is missing")
    }

    @Test(arguments: StoreKind.allCases) func auditQueriesFilterAndPage(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<10 {
            var record = Self.record(
                "op \(index)", actor: index.isMultiple(of: 2) ? "alice" : "bob", target: index < 5 ? "services/web" : "routes/api")
            record.time = base.addingTimeInterval(Double(index))
            try await store.appendAudit(record)
        }
        #expect(try await store.auditEntries(AuditQuery(actor: "bob")).map(\.record.operation) == ["op 9", "op 7", "op 5", "op 3", "op 1"])
        #expect(try await store.auditEntries(AuditQuery(targetPrefix: "routes/")).count == 5)
        let window = try await store.auditEntries(AuditQuery(since: base.addingTimeInterval(2), until: base.addingTimeInterval(4)))
        #expect(window.map(\.record.operation) == ["op 4", "op 3", "op 2"])
        let firstPage = try await store.auditEntries(AuditQuery(limit: 4))
        let secondPage = try await store.auditEntries(AuditQuery(before: firstPage.last?.sequence, limit: 4))
        #expect(firstPage.map(\.sequence) == [10, 9, 8, 7])
        #expect(secondPage.map(\.sequence) == [6, 5, 4, 3])
        #expect(firstPage[0].record.time == base.addingTimeInterval(9))
    }

    @Test(arguments: StoreKind.allCases) func tokensAreAddedListedAndRemovedByName(_ kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let store = try await temporary.open()
        try await store.addToken(StoredToken(name: "ops", role: .admin, secretHash: String(repeating: "a", count: 64)))
        try await store.addToken(StoredToken(name: "dash", role: .viewer, secretHash: String(repeating: "b", count: 64)))
        await #expect(throws: StoreError.duplicateToken("ops")) {
            try await store.addToken(StoredToken(name: "ops", role: .viewer, secretHash: ""))
        }
        #expect(try await store.tokens().map(\.name) == ["dash", "ops"])
        #expect(try await store.tokens().first?.role == .viewer)
        #expect(try await store.removeToken(named: "dash"))
        #expect(try await !store.removeToken(named: "dash"))
        #expect(try await store.tokens().map(\.name) == ["ops"])
    }
}

@Suite struct SHA256HexTests {
    @Test func digestsMatchTheStandardVectors() {
        // FIPS 180-2 test vectors
        #expect(SHA256Hex.digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hex.digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
