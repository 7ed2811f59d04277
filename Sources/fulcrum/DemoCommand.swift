import ArgumentParser
import Foundation
import FulcrumAdmin
import FulcrumCore
import FulcrumHealth
import FulcrumProxy
import FulcrumStore
import Logging
import NIOPosix

/// `fulcrum demo`: four demo nodes on loopback and the balancer in front of them, with an
/// embedded configuration that shows weighted round robin, a pinned route, header routing,
/// consistent hashing and health checks; with the admin API and the web console on a store in a
/// temporary directory (removed on exit).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Start demo backends and the balancer with a built-in configuration.")

    @Option(help: "The port the balancer listens on (127.0.0.1).")
    var port: Int = 8080

    @Option(help: "The port of the admin API and web console (127.0.0.1).")
    var adminPort: Int = 9901

    @Flag(help: "Print the embedded configuration and exit.")
    var printConfig = false

    @OptionGroup var logging: LoggingOptions

    static let nodeNames = ["web-a", "web-b", "api-a", "api-c"]

    static func configText(port: Int, backendPorts: [Int]) -> String {
        """
        # Fulcrum demo configuration
        listen: [{ address: 127.0.0.1, port: \(port) }]
        access_log: true
        services:
          web:
            strategy: round_robin
            health_check: { path: /, interval: 2s, timeout: 500ms }
            passive_health: { consecutive_failures: 3, base_ejection: 10s }
            nodes:
              - { name: web-a, host: 127.0.0.1, port: \(backendPorts[0]), weight: 2 }
              - { name: web-b, host: 127.0.0.1, port: \(backendPorts[1]), weight: 1 }
          api:
            strategy: hash
            hash_key: header:X-User
            nodes:
              - { name: api-a, host: 127.0.0.1, port: \(backendPorts[2]) }
              - { name: api-c, host: 127.0.0.1, port: \(backendPorts[3]) }
        routes:
          - name: api
            match: { path_prefix: /api/ }
            service: api
          - name: beta
            match: { path_prefix: /, headers: { X-Beta: "1" } }
            service: web
            node: web-b
        default: { service: web }
        """
    }

    func run() async throws {
        if printConfig {
            print(Self.configText(port: port, backendPorts: [9001, 9002, 9003, 9004]))
            return
        }
        logging.bootstrap()
        OpenFileLimit.raise(logger: Logger(label: "fulcrum"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var backends: [DemoBackend] = []
        // one backend per node, answering with the node's name
        for name in Self.nodeNames {
            backends.append(try await DemoBackend.start(name: name, group: group))
        }
        let text = Self.configText(port: port, backendPorts: backends.map(\.port))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try SQLiteConfigStore(path: directory.appendingPathComponent("demo.db").path)
        let version = try await ConfigController.bootstrap(store: store, initialDocument: { try ConfigDocument.parse(text) }, compile: StoreMode.compile)
        let runtime = try StoreMode.compile(FulcrumConfig.parse(document: version.document), version.number, [:])
        let server = try ProxyServer(runtime: runtime)
        try await server.start()
        let checker = HealthChecker(group: group) { service, node, result in
            server.recordProbe(service: service, node: node, success: result.success, detail: result.detail)
        }
        checker.apply(runtime.config, nodeTLS: runtime.nodeTLS)
        let secret = AdminTokens.generateSecret()
        try await store.addToken(StoredToken(name: "admin", role: .admin, secretHash: AdminTokens.hash(secret)))
        let controller = ConfigController(
            store: store, active: version, compile: StoreMode.compile,
            activate: { runtime in
                server.apply(runtime)
                checker.apply(runtime.config, nodeTLS: runtime.nodeTLS)
            })
        let rollouts = RolloutController(controller: controller, proxy: server)
        let admin = try await AdminServer.start(api: AdminAPI(controller: controller, proxy: server, rollouts: rollouts), host: "127.0.0.1", port: adminPort)
        let banner = """
            Fulcrum demo is running on http://127.0.0.1:\(port)/ with \(backends.count) demo nodes on ports \(backends.map { String($0.port) }.joined(separator: ", ")).
            Try:
              for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:\(port)/; done       # round robin 2:1 over web-a and web-b
              curl -s -H 'X-Beta: 1' http://127.0.0.1:\(port)/hello                   # pinned to web-b by a header route
              curl -s -H 'X-User: alice' http://127.0.0.1:\(port)/api/orders          # consistent hashing: same user, same node
              curl -s -i http://127.0.0.1:\(port)/ | head -n 12                        # proxy headers, request ID
            Web console: http://127.0.0.1:\(admin.address.port ?? adminPort)/console/ (sign in with the token below)
            Admin API:   curl -H 'Authorization: Bearer \(secret)' http://127.0.0.1:\(admin.address.port ?? adminPort)/api/v1/services
            Token (admin role, for this run only): \(secret)
            See the configuration with: fulcrum demo --print-config; node health with: kill -USR1 <pid>. Stop with Ctrl-C.

            """
        FileHandle.standardOutput.write(Data(banner.utf8))  // unbuffered: shown at once even into a pipe or a file
        let logger = Logger(label: "fulcrum")
        var services = GatewayServices(server: server, checker: checker, logger: logger)
        services.admin = admin
        services.follower = { await rollouts.run() }
        services.onStatus = {
            // through the logger, as serve does: print's buffer is not flushed into a pipe or a file
            let summary = await server.state().summary
            logger.notice("health summary\n\(summary)")
        }
        let started = backends
        services.afterStop = {
            try? FileManager.default.removeItem(at: directory)
            for backend in started { try? await backend.stop() }
            try? await group.shutdownGracefully()
        }
        try await services.run()
    }
}
