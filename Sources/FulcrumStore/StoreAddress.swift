import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// What `--store` names: a SQLite file (any path), or a PostgreSQL database shared by several
/// instances, as a URL in libpq's form:
///
///     postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=ca.pem
///     postgres://USER@/DATABASE?host=/var/run/postgresql        (a Unix socket directory)
///
/// The password is best not written in the URL (it would show in the process list): it is taken
/// from a file (`--store-password-file`), else `FULCRUM_STORE_PASSWORD`, else `PGPASSWORD`.
/// `sslmode` is `disable`, `prefer` (the default, as libpq's: TLS when the server offers it,
/// unverified), `require` (TLS, unverified) or `verify-full` (TLS with the server's certificate
/// verified against `sslrootcert` or the system's roots, and its name checked).
public enum StoreAddress: Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresAddress)

    public struct PostgresAddress: Sendable {
        public var configuration: PostgresClient.Configuration
        /// The URL without its password.
        public var redacted: String
    }

    /// A `--store` value that cannot be used, and why.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// - Parameter password: the password read from `--store-password-file`, if given.
    public init(_ text: String, password: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(Invalid) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            self = .sqlite(path: text)
            return
        }
        guard let url = URLComponents(string: text) else { throw Invalid(description: "'--store \(text)' is not a valid URL") }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        for name in query.keys where !["sslmode", "sslrootcert", "host"].contains(name) {
            throw Invalid(description: "'--store': unknown parameter '\(name)' (known: sslmode, sslrootcert, host)")
        }
        guard let user = url.user, !user.isEmpty else { throw Invalid(description: "'--store': the URL needs a user (postgres://USER@HOST/DATABASE)") }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw Invalid(description: "'--store': the URL needs a database (postgres://USER@HOST/DATABASE)") }
        let secret = url.password ?? password ?? environment["FULCRUM_STORE_PASSWORD"] ?? environment["PGPASSWORD"]
        let host = url.host ?? ""
        let port = url.port ?? 5432
        var configuration: PostgresClient.Configuration
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: secret, database: database)
        } else {
            guard !host.isEmpty else { throw Invalid(description: "'--store': the URL needs a host, or ?host=/socket/directory") }
            configuration = .init(host: host, port: port, username: user, password: secret, database: database, tls: .disable)
            var tls = TLSConfiguration.makeClientConfiguration()
            switch query["sslmode"] ?? "prefer" {
            case "disable":
                configuration.tls = .disable
            case "prefer":
                tls.certificateVerification = .none
                configuration.tls = .prefer(tls)
            case "require":
                tls.certificateVerification = .none
                configuration.tls = .require(tls)
            case "verify-full":
                if let root = query["sslrootcert"] { tls.trustRoots = .file(root) }
                configuration.tls = .require(tls)
            case let other:
                throw Invalid(description: "'--store': sslmode '\(other)' is not one of disable, prefer, require, verify-full")
            }
        }
        var redacted = url
        redacted.password = nil
        self = .postgres(PostgresAddress(configuration: configuration, redacted: redacted.string ?? "postgres://"))
    }

    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let address): address.redacted
        }
    }

    /// Opens the store (creating a SQLite file, or the schema of an empty PostgreSQL database).
    public func open(logger: Logger = Logger(label: "fulcrum.store")) async throws -> any ConfigStore {
        switch self {
        case .sqlite(let path): try SQLiteConfigStore(path: path)
        case .postgres(let address): try await PostgresConfigStore(configuration: address.configuration, location: address.redacted, logger: logger)
        }
    }
}
