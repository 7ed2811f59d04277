import Foundation
import FulcrumAdmin
import FulcrumCore
import FulcrumProxy
import FulcrumStore
import NIOPosix
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A running Fulcrum with a store and the admin API, as `serve --store` runs it: a real SQLite file
/// in a temporary directory, demo backends `a` and `b`, the data plane and the admin listener on
/// loopback ports, and two tokens (`ops`, admin; `watcher`, viewer).
final class AdminFixture: @unchecked Sendable {
    let directory: URL
    let store: SQLiteConfigStore
    let backends: [DemoBackend]
    let server: ProxyServer
    let controller: ConfigController
    let admin: AdminServer
    let rollouts: RolloutController
    let proxyPort: Int
    let adminSecret = "fulcrum_test_admin_secret_0123456789"
    let viewerSecret = "fulcrum_test_viewer_secret_0123456789"
    /// Requests time out after 20 s, so an answer that never comes fails the test instead of hanging the suite.
    private let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 20
        return URLSession(configuration: configuration)
    }()

    /// The configuration imported as version 1: every request goes to `a` unless routed otherwise.
    static func initialConfig(a: Int, b: Int, tlsListener: String? = nil) -> String {
        """
        listen: [{ address: 127.0.0.1, port: 0 }\(tlsListener.map { ", " + $0 } ?? "")]
        access_log: false
        services:
          web:
            nodes:
              - { name: a, host: 127.0.0.1, port: \(a), weight: 1 }
              - { name: b, host: 127.0.0.1, port: \(b), weight: 0 }
        routes:
          - { name: api, match: { path_prefix: /api/ }, service: web }
        default: { service: web }
        """
    }

    /// - Parameter tlsListener: a second listener (flow YAML), for tests of TLS listeners.
    init(tlsListener: String? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteConfigStore(path: directory.appendingPathComponent("fulcrum.db").path)
        let a = try await DemoBackend.start(name: "a", group: MultiThreadedEventLoopGroup.singleton)
        let b = try await DemoBackend.start(name: "b", group: MultiThreadedEventLoopGroup.singleton)
        backends = [a, b]
        let compile: ConfigController.Compile = { config, version, bundles in try RuntimeConfig(config: config, generation: version, bundles: bundles) }
        let text = Self.initialConfig(a: a.port, b: b.port, tlsListener: tlsListener)
        let active = try await ConfigController.bootstrap(store: store, initialDocument: { try ConfigDocument.parse(text) }, compile: compile)
        let server = try ProxyServer(runtime: try compile(FulcrumConfig.parse(document: active.document), active.number, [:]))
        self.server = server
        proxyPort = try await server.start().first?.port ?? 0
        controller = ConfigController(store: store, active: active, compile: compile, activate: { server.apply($0) })
        try await store.addToken(StoredToken(name: "ops", role: .admin, secretHash: AdminTokens.hash(adminSecret)))
        try await store.addToken(StoredToken(name: "watcher", role: .viewer, secretHash: AdminTokens.hash(viewerSecret)))
        rollouts = RolloutController(controller: controller, proxy: server)
        admin = try await AdminServer.start(api: AdminAPI(controller: controller, proxy: server, rollouts: rollouts), host: "127.0.0.1", port: 0)
    }

    func stop() async throws {
        await admin.stop()
        try await server.shutdown()
        for backend in backends { try? await backend.stop() }  // a test may have stopped one
        try? FileManager.default.removeItem(at: directory)
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var text: String
        var json: ConfigDocument? { try? JSONDocumentReader.parse(text) }

        /// The value at a path of keys in the JSON body.
        subscript(_ path: String...) -> ConfigDocument? { json?.value(at: path) }
    }

    enum Credential {
        case admin, viewer, none
        case raw(String)
    }

    /// One admin API request.
    func call(
        _ method: String, _ path: String, as credential: Credential = .admin, ifMatch: String? = nil, body: String? = nil,
        contentType: String? = "application/json"
    ) async throws -> Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(admin.address.port ?? 0)\(path)")!)
        request.httpMethod = method
        switch credential {
        case .admin: request.setValue("Bearer \(adminSecret)", forHTTPHeaderField: "Authorization")
        case .viewer: request.setValue("Bearer \(viewerSecret)", forHTTPHeaderField: "Authorization")
        case .raw(let value): request.setValue(value, forHTTPHeaderField: "Authorization")
        case .none: break
        }
        if let ifMatch { request.setValue(ifMatch, forHTTPHeaderField: "If-Match") }
        if let body {
            request.httpBody = Data(body.utf8)
            if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return Reply(status: http.statusCode, headers: headers, text: String(decoding: data, as: UTF8.self))
    }

    /// The active version's number as the API reports it.
    func activeVersion() async throws -> Int {
        try await call("GET", "/api/v1/config")["number"]?.intValue ?? -1
    }

    /// The name of the backend that answered a request sent through the proxy.
    func proxied(_ path: String) async throws -> String {
        let (_, response) = try await session.data(from: URL(string: "http://127.0.0.1:\(proxyPort)\(path)")!)
        return (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "X-Backend") ?? "none"
    }
}
