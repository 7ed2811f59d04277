import ArgumentParser
import FulcrumAdmin
import FulcrumCore
import FulcrumStore
import Foundation

/// `--store PATH|URL`, shared by the commands that read or change a store.
struct StoreOption: ParsableArguments {
    @Option(help: "The store, as given to 'fulcrum serve --store': a SQLite file or a postgres:// URL.")
    var store: String

    @Option(help: "A file holding the PostgreSQL store's password (or set FULCRUM_STORE_PASSWORD or PGPASSWORD).")
    var storePasswordFile: String?

    func open() async throws -> any ConfigStore {
        let password = try storePasswordFile.map { try ConfigFile.read($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        let address = try StoreAddress(store, password: password)
        if case .sqlite(let path) = address, !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("there is no store at \(path)")
        }
        return try await address.open()
    }
}

/// `fulcrum config`: the versions kept in a store.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Export and list the configuration versions of a store.",
        subcommands: [Export.self, History.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the active version (or another) as YAML.")

        @OptionGroup var store: StoreOption

        @Option(help: "The version to export (default: the active one).")
        var version: Int?

        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
        var output: String?

        func run() async throws {
            let opened = try await store.open()
            let chosen: ConfigVersion?
            if let version { chosen = try await opened.version(version) } else { chosen = try await opened.activeVersion() }
            guard let chosen else {
                print(version.map { "there is no version \($0)" } ?? "the store has no version yet")
                throw ExitCode(1)
            }
            let text = "# Fulcrum configuration, version \(chosen.number) (\(chosen.source.rawValue), by \(chosen.actor))\n" + chosen.document.yamlText()
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                print(text, terminator: "")
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List versions, newest first.")

        @OptionGroup var store: StoreOption

        @Option(help: "How many versions to list.")
        var limit = 20

        func run() async throws {
            for version in try await store.open().versions(limit: limit, before: nil) {
                let time = ISO8601DateFormatter().string(from: version.createdAt)
                let mark = version.active ? "*" : " "
                print("\(mark) \(version.number)\t\(time)\t\(version.actor)\t\(version.source.rawValue)\t\(version.message)")
            }
        }
    }
}

/// `fulcrum audit`: read and verify the audit log of a store.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "List and verify the audit log of a store.", subcommands: [Verify.self, List.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain: exit 0 when intact, 1 at the first entry that was altered or removed.")

        @OptionGroup var store: StoreOption

        func run() async throws {
            let result = try await store.open().verifyAuditChain()
            print(result)
            if !result.isIntact { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show audit entries, newest first.")

        @OptionGroup var store: StoreOption

        @Option(help: "How many entries to show.")
        var limit = 50

        @Option(help: "Only entries by this actor.")
        var actor: String?

        func run() async throws {
            for entry in try await store.open().auditEntries(AuditQuery(actor: actor, limit: limit)) {
                let record = entry.record
                let time = ISO8601DateFormatter().string(from: record.time)
                let version = entry.version.map { " -> version \($0)" } ?? ""
                print("\(entry.sequence)\t\(time)\t\(record.actor)@\(record.client)\t\(record.operation)\t\(record.target)\t\(record.result)\(version)")
            }
        }
    }
}

/// `fulcrum token`: admin API tokens.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke admin API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print its secret (shown only this once).")

        @OptionGroup var store: StoreOption

        @Option(help: "A name for the token (letters, digits, '-', '_', '.').")
        var name: String

        @Option(help: "viewer (read only) or admin (read and change).")
        var role: String = "viewer"

        func validate() throws {
            if !AdminTokens.isValidName(name) { throw ValidationError("--name must be 1 to 64 letters, digits, '-', '_' or '.'") }
            if TokenRole(rawValue: role) == nil { throw ValidationError("--role must be viewer or admin") }
        }

        func run() async throws {
            let opened = try await store.open()
            let secret = AdminTokens.generateSecret()
            let role = TokenRole(rawValue: role) ?? .viewer
            do {
                try await opened.addToken(StoredToken(name: name, role: role, secretHash: AdminTokens.hash(secret)))
            } catch let error as StoreError {
                print("\(error)")
                throw ExitCode(1)
            }
            try await opened.appendAudit(AuditRecord(
                actor: "cli", client: "-", operation: "token create", target: "tokens/\(name)", result: "ok", detail: "created with role \(role.rawValue)"))
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (names and roles).")

        @OptionGroup var store: StoreOption

        func run() async throws {
            for token in try await store.open().tokens() {
                print("\(token.name)\t\(token.role.rawValue)\t\(ISO8601DateFormatter().string(from: token.createdAt))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")

        @OptionGroup var store: StoreOption

        @Option(help: "The token's name.")
        var name: String

        func run() async throws {
            let opened = try await store.open()
            guard try await opened.removeToken(named: name) else {
                print("there is no token '\(name)'")
                throw ExitCode(1)
            }
            try await opened.appendAudit(AuditRecord(
                actor: "cli", client: "-", operation: "token revoke", target: "tokens/\(name)", result: "ok", detail: "revoked"))
            print("revoked \(name)")
        }
    }
}
