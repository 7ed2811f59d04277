import Foundation
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import FulcrumTLS
import Logging

/// The one way configuration changes reach the data plane: a change (from the admin API, a
/// `fulcrum` command seen through ``refresh()``, or the configuration file re-read on SIGHUP) is
/// validated, compiled, committed to the store (with its audit entry) and only then swapped in.
/// A change that fails any step leaves both the store and the data plane as they were. Without a
/// store (`serve --config` alone), versions are numbered in memory and nothing is committed.
///
/// Changes are serialised by the actor; ``ChangeRequest/expected`` gives optimistic concurrency
/// between operators, and the store's own check covers other processes sharing the store.
public actor ConfigController {
    /// Compiles a validated configuration for the data plane (resolving addresses, building the
    /// router, reading certificates, the stored ones from `bundles`); throws when it cannot be served.
    public typealias Compile = @Sendable (FulcrumConfig, _ version: Int, _ bundles: [String: CertificateBundle]) throws -> RuntimeConfig
    /// Swaps a compiled configuration in (data plane, health checker).
    public typealias Activate = @Sendable (RuntimeConfig) -> Void
    /// Told of every version applied, with the certificates it names (a fleet member keeps a
    /// last-known-good copy of it).
    public typealias Applied = @Sendable (ConfigVersion, [String: CertificateBundle]) -> Void

    /// Who asks for a change, from where, and on which version it is based.
    public struct ChangeRequest: Sendable {
        public var actor: String
        public var client: String
        public var source: ChangeSource
        /// e.g. `PUT /api/v1/services/users`.
        public var operation: String
        /// e.g. `services/users`.
        public var target: String
        public var message: String
        /// The version the change was made from (`nil`: apply to whatever is active).
        public var expected: Int?

        public init(actor: String, client: String, source: ChangeSource, operation: String, target: String, message: String, expected: Int?) {
            self.actor = actor
            self.client = client
            self.source = source
            self.operation = operation
            self.target = target
            self.message = message
            self.expected = expected
        }
    }

    /// What a change did.
    public struct Outcome: Sendable {
        /// The active version after the change.
        public var version: ConfigVersion
        /// False when the edit changed nothing (no version was made).
        public var created: Bool
        public var changes: [DocumentChange]
    }

    /// Where versions are committed; `nil` when Fulcrum serves a file without a store.
    public let store: (any ConfigStore)?
    private let compile: Compile
    private let activate: Activate
    private let onApplied: Applied?
    private let logger: Logger
    /// The version the data plane serves.
    public private(set) var active: ConfigVersion
    /// The chains and keys of the certificates ``active`` names: a change that keeps them (most
    /// do) reads nothing from the store for them, so an urgent change, and the swap back of the
    /// active version when the store then refuses it, work while the store does not answer.
    private var activeBundles: [String: CertificateBundle]

    /// The version to serve from `store`: its active version or, when the store is empty,
    /// `initialDocument()` validated, compiled and committed as version 1.
    public static func bootstrap(
        store: any ConfigStore, initialDocument: () throws -> ConfigDocument, compile: Compile, logger: Logger = Logger(label: "fulcrum.admin")
    ) async throws -> ConfigVersion {
        if let version = try await store.activeVersion() { return version }
        let document = try initialDocument()
        let config = try FulcrumConfig.parse(document: document)
        _ = try compile(config, 1, try await storedBundles(of: config, in: store))
        let version = try await store.commit(
            VersionProposal(document: document, actor: "file", source: .file, message: "initial import of the configuration file", basedOn: nil),
            audit: AuditRecord(
                actor: "file", client: "-", operation: "config import", target: "config", result: "ok",
                detail: "version 1: imported from the configuration file"))
        logger.notice("the store was empty: imported the configuration file as version 1")
        return version
    }

    /// The chains and keys of the certificates `config` names in `stored_certificates`, read from
    /// `store` (none without a store: ``RuntimeConfig`` then reports each as missing).
    public static func storedBundles(of config: FulcrumConfig, in store: (any ConfigStore)?) async throws -> [String: CertificateBundle] {
        guard let store, !config.storedCertificates.isEmpty else { return [:] }
        return try await store.certificates(Set(config.storedCertificates.map(\.chainSHA256)))
    }

    /// The bundles `config` names: those the active version has, and the others from the store.
    private func bundles(for config: FulcrumConfig) async throws -> [String: CertificateBundle] {
        let wanted = Set(config.storedCertificates.map(\.chainSHA256))
        var found = activeBundles.filter { wanted.contains($0.key) }
        let missing = wanted.subtracting(found.keys)
        if let store, !missing.isEmpty { found.merge(try await store.certificates(missing)) { known, _ in known } }
        return found
    }

    /// A controller for a data plane that serves `active`, compiled with `bundles` (see
    /// ``bootstrap(store:initialDocument:compile:logger:)`` and ``storedBundles(of:in:)``).
    public init(
        store: any ConfigStore, active: ConfigVersion, bundles: [String: CertificateBundle] = [:], compile: @escaping Compile,
        activate: @escaping Activate, onApplied: Applied? = nil, logger: Logger = Logger(label: "fulcrum.admin")
    ) {
        self.store = store
        self.active = active
        self.activeBundles = bundles
        self.compile = compile
        self.activate = activate
        self.onApplied = onApplied
        self.logger = logger
    }

    /// A controller for a data plane that serves `active`, read from a file, with no store: a
    /// change makes the next version in memory.
    public init(serving active: ConfigVersion, compile: @escaping Compile, activate: @escaping Activate, logger: Logger = Logger(label: "fulcrum")) {
        self.store = nil
        self.active = active
        self.activeBundles = [:]
        self.compile = compile
        self.activate = activate
        self.onApplied = nil
        self.logger = logger
    }

    /// The configuration of the active version, validated again (a store edited by hand is caught here).
    public func activeConfig() throws -> FulcrumConfig {
        try FulcrumConfig.parse(document: active.document)
    }

    /// Applies `edit` to the active document and, if the result differs, stores and activates it.
    ///
    /// - Throws: ``AdminError`` — 412 when `expected` is not the active version, 422 when the
    ///   result is invalid or cannot be compiled, or whatever `edit` throws.
    ///
    /// `urgent` swaps the new configuration in before storing it (a rollout stopping canary
    /// traffic); if storing then fails, the stored active version is swapped back in.
    public func change(
        _ request: ChangeRequest, urgent: Bool = false, edit: (ConfigDocument) throws(AdminError) -> ConfigDocument
    ) async throws(AdminError) -> Outcome {
        if let expected = request.expected, expected != active.number {
            throw .versionConflict(active: active.number)
        }
        let document = try edit(active.document)
        return try await commit(document, request: request, urgent: urgent)
    }

    /// Keeps an uploaded certificate chain and key in the store and, in a new version, serves it
    /// as `stored_certificates.NAME` on every TLS listener (replacing what that name served).
    ///
    /// - Throws: ``AdminError`` — 422 naming `cert` or `key` when the PEM cannot be used (a key
    ///   that is not the certificate's, no certificate, an encrypted key), 404 without a store,
    ///   and whatever ``change(_:urgent:edit:)`` throws.
    public func uploadCertificate(named name: String, _ bundle: CertificateBundle, _ request: ChangeRequest) async throws(AdminError) -> Outcome {
        guard let store else { throw .notFound("certificates are uploaded only to a store ('serve --store')") }
        let certificate: ServedCertificate
        do {
            certificate = try ServedCertificate(bundle: bundle, name: name, certField: "cert", keyField: "key")
        } catch {
            throw .invalidConfig(error)
        }
        if let expected = request.expected, expected != active.number {
            throw .versionConflict(active: active.number)
        }
        do {
            try await store.saveCertificate(bundle, chainSHA256: certificate.chainSHA256)
        } catch {
            throw .storeUnavailable("cannot store the certificate", error)
        }
        return try await change(request) { document in
            var document = document
            document.setValue(.mapping([.init("chain_sha256", .string(certificate.chainSHA256))]), at: ["stored_certificates", name])
            return document
        }
    }

    /// Makes a new version equal to version `number` (history is never rewritten).
    public func rollback(to number: Int, _ request: ChangeRequest) async throws(AdminError) -> Outcome {
        if let expected = request.expected, expected != active.number {
            throw .versionConflict(active: active.number)
        }
        guard let store else { throw .notFound("there is no version \(number): versions are kept only with a store") }
        let old: ConfigVersion?
        do {
            old = try await store.version(number)
        } catch {
            throw .storeUnavailable("cannot read version \(number)", error)
        }
        guard let old else { throw .notFound("there is no version \(number)") }
        var request = request
        request.source = .rollback
        if request.message.isEmpty { request.message = "rollback to version \(number)" }
        return try await commit(old.document, request: request)
    }

    private func commit(_ document: ConfigDocument, request: ChangeRequest, urgent: Bool = false) async throws(AdminError) -> Outcome {
        let changes = active.document.changes(to: document)
        guard !changes.isEmpty else { return Outcome(version: active, created: false, changes: []) }
        let config: FulcrumConfig
        do {
            config = try FulcrumConfig.parse(document: document)
        } catch {
            throw .invalidConfig(error)
        }
        let nextNumber = active.number + 1
        let bundles: [String: CertificateBundle]
        do {
            bundles = try await self.bundles(for: config)
        } catch {
            throw .storeUnavailable("cannot read the stored certificates", error)
        }
        let runtime: RuntimeConfig
        do {
            runtime = try compile(config, nextNumber, bundles)
        } catch let error as ConfigError {
            throw .invalidConfig(error)
        } catch {
            throw .cannotApply("\(error)")
        }
        let detail = changes.map(\.description).joined(separator: "\n")
        if urgent { activate(runtime) }
        let proposal = VersionProposal(document: document, actor: request.actor, source: request.source, message: request.message, basedOn: active.number)
        guard let store else {
            if !urgent { activate(runtime) }
            return applied(proposal.version(number: nextNumber), bundles: bundles, request: request, changes: changes)
        }
        let committed: ConfigVersion
        do {
            committed = try await store.commit(
                proposal,
                audit: AuditRecord(
                    actor: request.actor, client: request.client, operation: request.operation, target: request.target, result: "ok",
                    detail: detail))
        } catch {
            if urgent, let config = try? FulcrumConfig.parse(document: active.document),
                let previous = try? compile(config, active.number, activeBundles)
            {
                activate(previous)
            }
            if let error = error as? StoreError, case .some(let current) = error.conflictingActive { throw .versionConflict(active: current) }
            throw .storeUnavailable("the change was not stored", error)
        }
        // Every commit is based on the active version, which is the newest, so the number the
        // store gave is the one the configuration was compiled with.
        if !urgent { activate(runtime) }
        return applied(committed, bundles: bundles, request: request, changes: changes)
    }

    private func applied(_ committed: ConfigVersion, bundles: [String: CertificateBundle], request: ChangeRequest, changes: [DocumentChange]) -> Outcome {
        active = committed
        activeBundles = bundles
        onApplied?(committed, bundles)
        logger.info(
            "configuration changed",
            metadata: ["version": "\(committed.number)", "actor": "\(request.actor)", "operation": "\(request.operation)", "changes": "\(changes.count)"])
        return Outcome(version: committed, created: true, changes: changes)
    }

    /// Picks up a version activated by another process sharing the store (another Fulcrum instance
    /// or a `fulcrum` command). Returns true when a new version was activated.
    @discardableResult
    public func refresh() async throws -> Bool {
        guard let store, let latest = try await store.activeVersion(), latest.number != active.number else { return false }
        let config = try FulcrumConfig.parse(document: latest.document)
        let bundles = try await self.bundles(for: config)
        activate(try compile(config, latest.number, bundles))
        active = latest
        activeBundles = bundles
        onApplied?(latest, bundles)
        logger.notice("activated version \(latest.number) committed by another process", metadata: ["actor": "\(latest.actor)"])
        return true
    }
}
