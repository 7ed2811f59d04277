import ArgumentParser
import FulcrumCore

/// The `fulcrum` command line: serve traffic, check and explain configurations, run a demo.
@main
struct Fulcrum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fulcrum: a load balancer and API gateway on SwiftNIO.",
        version: FulcrumBuild.version,
        subcommands: [
            ServeCommand.self, CheckCommand.self, RouteCommand.self, DemoCommand.self, ConfigCommand.self, AuditCommand.self, TokenCommand.self,
        ]
    )
}
