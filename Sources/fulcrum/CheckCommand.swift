import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FulcrumCore

/// `fulcrum check`: validates a configuration; exit 0 when valid, 1 with every error otherwise.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate a configuration file and print every error.")

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON).")
    var config: String

    func run() throws {
        do {
            let runtime = try ConfigFile.compile(config, generation: 1)
            let parsed = runtime.config
            let nodes = parsed.services.reduce(0) { $0 + $1.nodes.count }
            print("\(config): ok (\(parsed.listeners.count) listeners, \(parsed.services.count) services, \(nodes) nodes, \(parsed.routes.count) routes)")
            for warning in runtime.warnings(now: Int64(time(nil))) { print("warning: \(warning)") }
        } catch let error as ConfigError {
            print("\(config): \(error)")
            throw ExitCode(1)
        } catch {
            print("\(error)")
            throw ExitCode(1)
        }
    }
}
