import FulcrumAdmin
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import Foundation
import Logging

/// Reading a configuration file from disk: parse, validate and compile, or every problem found.
enum ConfigFile {
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// The validated configuration in `path`.
    static func load(_ path: String) throws -> FulcrumConfig {
        try FulcrumConfig.parse(read(path))
    }

    /// The validated, compiled configuration in `path`.
    static func compile(_ path: String, generation: Int) throws -> RuntimeConfig {
        try RuntimeConfig(config: load(path), generation: generation)
    }

    /// SIGHUP: the file becomes a new version (when it differs from the active one), validated and
    /// compiled first, through the same controller as the admin API's changes. The active
    /// version's `stored_certificates` (managed through the admin API) are kept unless the file
    /// has its own. Returns whether a new version was applied (its compilation read the
    /// certificate files).
    @discardableResult
    static func reload(_ path: String, into controller: ConfigController, logger: Logger) async -> Bool {
        let request = ConfigController.ChangeRequest(
            actor: "file", client: "-", source: .file, operation: "config import (SIGHUP)", target: "config",
            message: "reloaded from \(path)", expected: nil)
        do {
            let text = try read(path)
            _ = try FulcrumConfig.parse(text)  // a mistake is reported with its line
            let fileDocument = try ConfigDocument.parse(text)
            let outcome = try await controller.change(request) { active in
                // certificates uploaded through the admin API are not in the file: they stay
                var document = fileDocument
                if document["stored_certificates"] == nil, let stored = active["stored_certificates"] {
                    document.setValue(stored, at: ["stored_certificates"])
                }
                return document
            }
            if outcome.created {
                logger.info("configuration reloaded", metadata: ["config": "\(path)", "version": "\(outcome.version.number)"])
            } else {
                logger.info("configuration file unchanged from the active version", metadata: ["version": "\(outcome.version.number)"])
            }
            return outcome.created
        } catch {
            logger.error("configuration rejected, the running one keeps serving", metadata: ["config": "\(path)", "error": "\(error)"])
            _ = try? await controller.store?.appendAudit(AuditRecord(
                actor: "file", client: "-", operation: request.operation, target: "config", result: "rejected", detail: "\(error)"))
            return false
        }
    }
}
