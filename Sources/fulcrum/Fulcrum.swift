import ArgumentParser
import FulcrumCore

#if canImport(Glibc)
import Glibc
#endif

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

    /// SIGHUP and SIGUSR1 end a process by default. A reload or status request sent while Fulcrum
    /// starts (before ``GatewayServices`` take them) must not kill it, so they are ignored from the
    /// first instruction on. SIGTERM and SIGINT keep their default until then: a stop asked for
    /// during start-up stops.
    static func main() async {
        signal(SIGHUP, SIG_IGN)
        signal(SIGUSR1, SIG_IGN)
        await main(nil)
    }
}
