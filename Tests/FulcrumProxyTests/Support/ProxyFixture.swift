import FulcrumCore
import FulcrumProxy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Foundation

/// A running proxy on an ephemeral 127.0.0.1 port in front of named test backends.
struct ProxyFixture {
    let server: ProxyServer
    let port: Int
    let backends: [String: TestBackend]

    /// Starts the backends, then the proxy with the configuration `yaml` returns for the backends'
    /// ports (keyed by name). The listener is added by the fixture.
    static func start(
        backends names: [String], workers: Int = 2, accessLog: Logger? = nil, events: Logger? = nil,
        listener: String = "{ address: 127.0.0.1, port: 0 }", _ yaml: ([String: Int]) -> String
    ) async throws -> ProxyFixture {
        var backends: [String: TestBackend] = [:]
        for name in names { backends[name] = try await TestBackend.start(name) }
        let ports = backends.mapValues(\.port)
        let text = "listen: [\(listener)]\nworkers: \(workers)\naccess_log: \(accessLog != nil)\n" + yaml(ports)
        let runtime = try RuntimeConfig(config: FulcrumConfig.parse(text), generation: 1)
        var logger = Logger(label: "fulcrum.test")
        logger.logLevel = ProcessInfo.processInfo.environment["FULCRUM_TEST_LOG"] == nil ? .critical : .debug
        let server = try ProxyServer(runtime: runtime, logs: ProxyLogs(events: events ?? logger, access: accessLog))
        let addresses = try await server.start()
        return ProxyFixture(server: server, port: addresses[0].port!, backends: backends)
    }

    func client() async throws -> TestClient {
        try await TestClient.connect(port: port)
    }

    /// Applies a new configuration (listener and settings as at start).
    func reload(_ yaml: String, generation: Int, listener: String = "{ address: 127.0.0.1, port: 0 }") throws {
        let text = "listen: [\(listener)]\nworkers: 2\naccess_log: false\n" + yaml
        server.apply(try RuntimeConfig(config: FulcrumConfig.parse(text), generation: generation))
    }

    func stop() async {
        try? await server.shutdown()
        for backend in backends.values { await backend.stop() }
    }
}

/// Collects log messages, each followed by its metadata (`key=value`, sorted by key) when it has any.
struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.withLockedValue { $0.append(([event.message.description] + fields).joined(separator: " ")) }
    }
}
