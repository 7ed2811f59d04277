import FulcrumCore
import FulcrumProxy
import Foundation

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
}
