import Foundation
import NIOCore
import NIOPosix

/// Debian's nginx serving HTTPS on a free 127.0.0.1 port, as a node Fulcrum reaches over TLS: the
/// TLS stack that nodes really run, rather than one Fulcrum's own tests wrote. Every response
/// names the SNI name the client sent, the nginx connection number (equal numbers mean a reused
/// connection) and the subject of the client certificate, if one was sent.
final class NginxNode: Sendable {
    let port: Int
    let folder: URL
    private let process: Process

    /// Starts nginx with `cert` and `key`; with `clientCA`, it asks for a client certificate
    /// issued by that CA and refuses requests without one.
    static func start(cert: String, key: String, clientCA: String? = nil) async throws -> NginxNode {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = try freePort()
        let clientLines = clientCA.map { "ssl_verify_client on; ssl_client_certificate \($0);" } ?? ""
        let config = """
            daemon off; master_process off; worker_processes 1;
            error_log \(folder.path)/error.log notice; pid \(folder.path)/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log off;
                keepalive_requests 10000;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(cert); ssl_certificate_key \(key);
                    \(clientLines)
                    location / { return 200 "sni=$ssl_server_name connection=$connection client=$ssl_client_s_dn host=$host\\n"; }
                }
            }
            """
        try config.write(to: folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-p", folder.path, "-c", folder.appendingPathComponent("nginx.conf").path, "-e", "\(folder.path)/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let node = NginxNode(port: port, folder: folder, process: process)
        for _ in 0..<100 {
            if (try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get().close()) != nil {
                return node
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        node.stop()
        throw NginxNodeError(log: (try? String(contentsOf: folder.appendingPathComponent("error.log"), encoding: .utf8)) ?? "")
    }

    private init(port: Int, folder: URL, process: Process) {
        self.port = port
        self.folder = folder
        self.process = process
    }

    /// Kills nginx (SIGKILL: nginx started by Foundation's `Process` here ignored SIGTERM, and the
    /// test has nothing to drain).
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }

    /// A port nothing listens on now (the kernel's choice for a socket bound to port 0).
    private static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress!.port!
    }
}

struct NginxNodeError: Error, CustomStringConvertible {
    var log: String
    var description: String { "nginx did not start: \(log)" }
}
