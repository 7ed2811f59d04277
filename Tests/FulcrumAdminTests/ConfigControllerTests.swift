import FulcrumAdmin
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import Foundation
import RealSockets
import Synchronization
import TestCertificates
import TestPostgres
import Testing

/// The controller without a store, as `serve --config` uses it for SIGHUP: the same validation,
/// compilation and activation as the admin API's changes, with versions numbered in memory.
@Suite struct ConfigControllerWithoutStoreTests {
    static func yaml(port: Int) -> String {
        "listen: [{ address: 127.0.0.1, port: 0 }]\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(port) }] } }\ndefault: { service: s }\n"
    }

    /// What the controller swapped in, in order.
    final class Activations: Sendable {
        let generations = Mutex<[Int]>([])
    }

    static func controller(_ activations: Activations) throws -> ConfigController {
        let first = VersionProposal(
            document: try ConfigDocument.parse(yaml(port: 8001)), actor: "file", source: .file, message: "read", basedOn: nil
        ).version(number: 1)
        return ConfigController(
            serving: first, compile: { config, version, bundles in try RuntimeConfig(config: config, generation: version, bundles: bundles) },
            activate: { runtime in activations.generations.withLock { $0.append(runtime.generation) } })
    }

    static let request = ConfigController.ChangeRequest(
        actor: "file", client: "-", source: .file, operation: "config import (SIGHUP)", target: "config", message: "reloaded", expected: nil)

    /// Before, a file-mode reload compiled and swapped in every SIGHUP as a new generation, even an
    /// unchanged file, outside the controller the admin API uses.
    @Test func aChangedFileBecomesTheNextVersionAndAnUnchangedOneNone() async throws {
        let activations = Activations()
        let controller = try Self.controller(activations)
        let changed = try ConfigDocument.parse(Self.yaml(port: 8002))
        let outcome = try await controller.change(Self.request) { _ in changed }
        #expect(outcome.created && outcome.version.number == 2 && outcome.version.basedOn == 1)
        #expect(outcome.changes.count == 1)
        let again = try await controller.change(Self.request) { _ in changed }
        #expect(!again.created && again.version.number == 2)
        #expect(activations.generations.withLock { $0 } == [2])
        #expect(await controller.active.number == 2)
    }

    /// Before, an urgent change without a store was swapped in twice.
    @Test func anUrgentChangeIsActivatedOnce() async throws {
        let activations = Activations()
        let controller = try Self.controller(activations)
        let changed = try ConfigDocument.parse(Self.yaml(port: 8004))
        _ = try await controller.change(Self.request, urgent: true) { _ in changed }
        #expect(activations.generations.withLock { $0 } == [2])
    }

    @Test func anInvalidFileIsNeitherActivatedNorCounted() async throws {
        let activations = Activations()
        let controller = try Self.controller(activations)
        let invalid = try ConfigDocument.parse("listen: [{ address: 127.0.0.1, port: 0 }]\nservices: { s: { nodes: [] } }\ndefault: { service: nope }\n")
        await #expect(throws: AdminError.self) {
            _ = try await controller.change(Self.request) { _ in invalid }
        }
        #expect(activations.generations.withLock { $0 }.isEmpty)
        #expect(await controller.active.number == 1)
        let valid = try await controller.change(Self.request) { _ in try! ConfigDocument.parse(Self.yaml(port: 8003)) }
        #expect(valid.version.number == 2, "a rejected change used no number")
    }

    @Test func rollbackNeedsAStoreAndSaysSo() async throws {
        let controller = try Self.controller(Activations())
        do {
            _ = try await controller.rollback(to: 1, Self.request)
            Issue.record("a rollback without a store succeeded")
        } catch {
            #expect("\(error)".contains("only with a store"))
        }
    }
}

/// The controller with a store that stops answering.
@Suite(.realSockets) struct ConfigControllerStoreOutageTests {
    /// Before, every change read the certificates of the stored versions from the store again, so
    /// while the store did not answer an urgent change (a rollout stopping canary traffic) was
    /// refused before it was swapped in, and the swap back had nothing to compile with.
    @Test func anUrgentChangeIsSwappedInAndBackWhileTheStoreIsDownWithStoredCertificates() async throws {
        let postgres = try PostgresServer.dedicated()
        let database = try postgres.createDatabase()
        let store = try await PostgresConfigStore(configuration: database.configuration, location: "test")
        defer {
            store.close()
            try? postgres.stop()
        }
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let activations = ConfigControllerWithoutStoreTests.Activations()
        let compile: ConfigController.Compile = { config, version, bundles in try RuntimeConfig(config: config, generation: version, bundles: bundles) }
        let active = try await ConfigController.bootstrap(
            store: store, initialDocument: { try ConfigDocument.parse(ConfigControllerWithoutStoreTests.yaml(port: 8001)) }, compile: compile)
        let controller = ConfigController(
            store: store, active: active, compile: compile, activate: { runtime in activations.generations.withLock { $0.append(runtime.generation) } })
        let request = ConfigController.ChangeRequest(
            actor: "ops", client: "-", source: .api, operation: "test", target: "config", message: "", expected: nil)
        let bundle = CertificateBundle(
            chainPEM: try String(contentsOfFile: site.cert, encoding: .utf8), keyPEM: try String(contentsOfFile: site.key, encoding: .utf8))
        #expect(try await controller.uploadCertificate(named: "site", bundle, request).version.number == 2)

        try postgres.stop()
        await #expect(throws: AdminError.self) {
            _ = try await controller.change(request, urgent: true) { document in
                var document = document
                document.setValue(try! ConfigDocument.parse("{ s: { nodes: [{ name: n, host: 127.0.0.1, port: 8002 }] } }"), at: ["services"])
                return document
            }
        }
        // swapped in at once, and back to version 2 when the store refused to keep version 3
        #expect(activations.generations.withLock { $0 } == [2, 3, 2])
        #expect(await controller.active.number == 2)
    }
}
