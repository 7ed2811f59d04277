import Foundation
import FulcrumCore
import GRDB
import Testing
@testable import FulcrumStore

/// A store in a new temporary directory, removed when the test ends.
final class TemporaryStore {
    let directory: URL
    var path: String { directory.appendingPathComponent("fulcrum.db").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func open() throws -> SQLiteConfigStore { try SQLiteConfigStore(path: path) }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

@Suite struct SQLiteConfigStoreTests {
    static func document(port: Int) -> ConfigDocument {
        .mapping([
            .init("listen", .list([.mapping([.init("port", .int(port))])])),
            .init("services", .mapping([.init("web", .mapping([.init("nodes", .list([]))]))])),
        ])
    }

    static func record(_ operation: String, actor: String = "alice", target: String = "config", result: String = "ok") -> AuditRecord {
        AuditRecord(actor: actor, client: "127.0.0.1", operation: operation, target: target, result: result, detail: "")
    }

    @Test func versionsAreNumberedChainedAndSurviveReopening() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        #expect(try await store.activeVersion() == nil)
        let first = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "import", basedOn: nil),
            audit: Self.record("config import", actor: "file"))
        let second = try await store.commit(
            VersionProposal(document: Self.document(port: 2), actor: "alice", source: .api, message: "port 2", basedOn: 1),
            audit: Self.record("PUT /api/v1/config"))
        #expect(first.number == 1 && second.number == 2 && second.basedOn == 1)

        let reopened = try temporary.open()
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

    @Test func aChangeBasedOnAnOldVersionIsRefusedAndStoresNothing() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
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

    @Test func concurrentChangesFromTheSameBaseLetExactlyOneWin() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "", basedOn: nil),
            audit: Self.record("import"))
        let other = try temporary.open()  // a second connection pool, as a second process would have
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

    @Test func storedVersionsAndAuditEntriesCannotBeEditedInPlace() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        _ = try await store.commit(
            VersionProposal(document: Self.document(port: 1), actor: "file", source: .file, message: "", basedOn: nil),
            audit: Self.record("import"))
        let raw = try DatabaseQueue(path: temporary.path)
        #expect(throws: DatabaseError.self) { () throws in try raw.write { try $0.execute(sql: "UPDATE config_version SET message = 'x'") } }
        #expect(throws: DatabaseError.self) { () throws in try raw.write { try $0.execute(sql: "DELETE FROM audit_entry") } }
    }

    @Test func storedCertificatesAreKeptByDigestOnceAndCannotBeEditedOrRemoved() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        let first = CertificateBundle(chainPEM: "chain one", keyPEM: "key one")
        try await store.saveCertificate(first, chainSHA256: "aa")
        // the same digest again keeps the first upload: a digest names one chain, hence one key
        try await store.saveCertificate(CertificateBundle(chainPEM: "chain one", keyPEM: "other"), chainSHA256: "aa")
        #expect(try await store.certificates(["aa", "bb"]) == ["aa": first])
        #expect(try await temporary.open().certificates(["aa"]) == ["aa": first])
        let raw = try DatabaseQueue(path: temporary.path)
        #expect(throws: DatabaseError.self) { () throws in try raw.write { try $0.execute(sql: "UPDATE stored_certificate SET key_pem = 'x'") } }
        #expect(throws: DatabaseError.self) { () throws in try raw.write { try $0.execute(sql: "DELETE FROM stored_certificate") } }
        #expect("\(first)".contains("key withheld") && !"\(first)".contains("key one"))
    }

    @Test func theStoreFileIsReadableByItsOwnerOnly() throws {
        let temporary = try TemporaryStore()
        _ = try temporary.open()
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

    @Test func theAuditChainDetectsAnEditedEntry() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        for index in 1...5 { try await store.appendAudit(Self.record("operation \(index)")) }
        let intact = try await store.verifyAuditChain()
        #expect(intact.isIntact && intact.entries == 5)
        #expect(intact.headHash == (try await store.auditEntries(AuditQuery(limit: 1)).first?.hash))

        let raw = try DatabaseQueue(path: temporary.path)
        try await raw.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entry_no_update")
            try db.execute(sql: "UPDATE audit_entry SET result = 'ok, honestly' WHERE sequence = 3")
        }
        let broken = try await store.verifyAuditChain()
        #expect(broken.firstBroken == 3)
        #expect(broken.problem == "its content does not match its hash")
    }

    @Test func theAuditChainDetectsARemovedEntry() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
        for index in 1...4 { try await store.appendAudit(Self.record("operation \(index)")) }
        let raw = try DatabaseQueue(path: temporary.path)
        try await raw.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entry_no_delete")
            try db.execute(sql: "DELETE FROM audit_entry WHERE sequence = 2")
        }
        let broken = try await store.verifyAuditChain()
        #expect(broken.firstBroken == 3)
        #expect(broken.problem == "entry 2 is missing")
    }

    @Test func auditQueriesFilterAndPage() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
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

    @Test func tokensAreAddedListedAndRemovedByName() async throws {
        let temporary = try TemporaryStore()
        let store = try temporary.open()
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
