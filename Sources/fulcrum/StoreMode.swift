import FulcrumAdmin
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import Foundation
import Logging

/// `serve --store`: the store holds the configuration versions; the file only seeds an empty store
/// (and is imported again as a new version on SIGHUP, see ``ConfigFile/reload(_:into:logger:)``);
/// the admin API makes changes.
struct StoreMode {
    let store: any ConfigStore
    let configPath: String?
    let logger: Logger

    /// Whether the store is shared over the network by a fleet (PostgreSQL): then this instance
    /// keeps a last-known-good copy of what it applies (a SQLite file is on this host already)
    /// and publishes the traffic its rollouts are judged on.
    var isShared: Bool { store is PostgresConfigStore }

    static func compile(_ config: FulcrumConfig, _ version: Int, _ bundles: [String: CertificateBundle]) throws -> RuntimeConfig {
        try RuntimeConfig(config: config, generation: version, bundles: bundles)
    }

    /// The version to serve, importing the file into an empty store.
    func bootstrap() async throws -> ConfigVersion {
        try await ConfigController.bootstrap(
            store: store,
            initialDocument: {
                guard let configPath else {
                    throw ConfigFile.LoadError(description: "the store \(store.location) is empty: give --config FILE to import a first configuration")
                }
                return try ConfigDocument.parse(ConfigFile.read(configPath))
            },
            compile: Self.compile, logger: logger)
    }

    /// Makes sure the admin API can be used: with no token stored, stores the one given by
    /// `FULCRUM_ADMIN_TOKEN` or `--admin-token-file`, or creates one and prints it once.
    func ensureFirstToken(tokenFile: String?) async throws {
        let given: String?
        if let secret = ProcessInfo.processInfo.environment["FULCRUM_ADMIN_TOKEN"], !secret.isEmpty {
            given = secret
        } else if let tokenFile {
            given = try ConfigFile.read(tokenFile).trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            given = nil
        }
        let tokens = try await store.tokens()
        guard tokens.isEmpty else {
            if let given, AdminTokens.authenticate(given, among: tokens) == nil {
                logger.warning("the given admin token is not in the store and is ignored: the store already has tokens (manage them with 'fulcrum token')")
            }
            return
        }
        let secret = given ?? AdminTokens.generateSecret()
        guard secret.count >= 16 else { throw ConfigFile.LoadError(description: "the admin token must be at least 16 characters long") }
        try await store.addToken(StoredToken(name: "admin", role: .admin, secretHash: AdminTokens.hash(secret)))
        try await store.appendAudit(AuditRecord(
            actor: "-", client: "-", operation: "token bootstrap", target: "tokens/admin", result: "ok",
            detail: given == nil ? "generated on first start" : "from FULCRUM_ADMIN_TOKEN or --admin-token-file"))
        if given == nil {
            FileHandle.standardError.write(Data("""

                ================================================================
                Created the admin token 'admin' (role admin). It is shown only once:

                    \(secret)

                Use it as 'Authorization: Bearer TOKEN' on the admin API.
                ================================================================

                """.utf8))
        }
    }
}

/// `HOST:PORT` (or `[IPv6]:PORT`) for the admin listener.
struct HostAndPort {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}
