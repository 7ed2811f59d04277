import FulcrumCore
import FulcrumHealth
import FulcrumProxy
import FulcrumTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RealSockets
import TestCertificates
import Testing

/// TLS to nodes, against Debian's nginx serving HTTPS with certificates a test CA issued: the
/// node's certificate verified (chain and name), refused when it does not verify, mutual TLS,
/// verification switched off, pooled connections reused, and health probes over TLS.
@Suite(.realSockets) struct UpstreamTLSIntegrationTests {
    /// A proxy whose only service has one node, nginx on `node`, with the node's `tls` settings.
    private func proxy(to node: NginxNode, tls: String, events: Logger? = nil) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: [], events: events) { _ in
            """
            services: { secure: { nodes: [{ name: n1, host: 127.0.0.1, port: \(node.port), tls: \(tls) }] } }
            default: { service: secure }
            """
        }
    }

    /// nginx serving a certificate for `node.internal` that `ca` issued.
    private func nginxNode(_ ca: TestCertificateAuthority, clientCA: String? = nil) async throws -> NginxNode {
        let files = try ca.issue("node", names: ["node.internal"])
        return try await NginxNode.start(cert: files.cert, key: files.key, clientCA: clientCA)
    }

    @Test func aNodeWithAVerifiedCertificateIsReachedOverTLSWithItsNameInSNI() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let nginx = try await nginxNode(ca)
        defer { nginx.stop() }
        let fixture = try await proxy(to: nginx, tls: "{ ca_file: \(ca.certificatePath), server_name: node.internal }")
        defer { Task { await fixture.stop() } }

        let client = try await fixture.client()
        let first = try await client.request(.GET, "/", headers: [("Host", "shop.example")])
        let second = try await client.request(.GET, "/", headers: [("Host", "shop.example")])
        await client.close()
        #expect(first.status == .ok)
        #expect(first.body.contains("sni=node.internal"))
        #expect(first.body.contains("host=shop.example"))  // the client's Host still goes to the node
        // the second request reused the pooled TLS connection (no second handshake)
        let connection = { (body: String) in body.split(separator: " ").first { $0.hasPrefix("connection=") } }
        #expect(connection(first.body) != nil)
        #expect(connection(first.body) == connection(second.body))
    }

    @Test(arguments: ["other CA", "other name"])
    func aNodeWhoseCertificateDoesNotVerifyGetsA502AndALogLineWithTheReason(_ failure: String) async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let otherCA = try TestCertificateAuthority(name: "Somebody Else's CA")
        defer { otherCA.remove() }
        let nginx = try await nginxNode(ca)
        defer { nginx.stop() }
        let tls = failure == "other CA"
            ? "{ ca_file: \(otherCA.certificatePath), server_name: node.internal }"
            : "{ ca_file: \(ca.certificatePath), server_name: billing.internal }"
        let lines = NIOLockedValueBox<[String]>([])
        let events = Logger(label: "test.events") { _ in CapturingLogHandler(lines: lines) }
        let fixture = try await proxy(to: nginx, tls: tls, events: events)
        defer { Task { await fixture.stop() } }

        let client = try await fixture.client()
        let response = try await client.request(.GET, "/")
        await client.close()
        #expect(response.status == .badGateway)
        let logged = lines.withLockedValue { $0 }.filter { $0.hasPrefix("cannot connect to node") }
        #expect(logged.count == 1, "\(lines.withLockedValue { $0 })")
        #expect(logged.first?.contains("node=n1") == true)
        #expect(logged.first?.contains("certificate verify failed") == true, "\(logged)")
        #expect(await fixture.server.traffic(seconds: 1).nodes.first { $0.name == "n1" }?.connectErrors == 1)
    }

    @Test func aNodeThatAsksForAClientCertificateGetsTheConfiguredOne() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let clientFiles = try ca.issue("gateway", names: ["gateway.internal"])
        let nginx = try await nginxNode(ca, clientCA: ca.certificatePath)
        defer { nginx.stop() }

        let without = try await proxy(to: nginx, tls: "{ ca_file: \(ca.certificatePath), server_name: node.internal }")
        let refused = try await without.client().request(.GET, "/")
        await without.stop()
        #expect(refused.status == .badRequest)  // nginx: "No required SSL certificate was sent"

        let with = try await proxy(
            to: nginx,
            tls: "{ ca_file: \(ca.certificatePath), server_name: node.internal, client_certificate: { cert: \(clientFiles.cert), key: \(clientFiles.key) } }")
        defer { Task { await with.stop() } }
        let accepted = try await with.client().request(.GET, "/")
        #expect(accepted.status == .ok)
        #expect(accepted.body.contains("client=CN=gateway.internal"), "\(accepted.body)")
    }

    @Test func verificationSwitchedOffAcceptsACertificateNobodyTrusts() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let nginx = try await nginxNode(ca)
        defer { nginx.stop() }
        let fixture = try await proxy(to: nginx, tls: "{ verify: false }")
        defer { Task { await fixture.stop() } }
        let response = try await fixture.client().request(.GET, "/")
        #expect(response.status == .ok)
        #expect(response.body.contains("sni= "))  // an IP host sends no SNI
    }

    @Test func aHealthProbeOfATLSNodeVerifiesItLikeTheProxyDoes() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let otherCA = try TestCertificateAuthority(name: "Somebody Else's CA")
        defer { otherCA.remove() }
        let nginx = try await nginxNode(ca)
        defer { nginx.stop() }
        var check = ActiveHealthCheck()
        check.path = "/"
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: nginx.port)
        func probe(trusting caFile: String) async throws -> ProbeResult {
            let tls = try UpstreamTLS(NodeTLS(caFile: caFile, serverName: "node.internal"), host: "127.0.0.1", path: "tls")
            return await HealthProbe.run(
                check, address: address, nodeHost: "127.0.0.1", nodePort: nginx.port, tls: tls, group: MultiThreadedEventLoopGroup.singleton)
        }
        let healthy = try await probe(trusting: ca.certificatePath)
        #expect(healthy.success, "\(healthy.detail)")
        let untrusted = try await probe(trusting: otherCA.certificatePath)
        #expect(!untrusted.success)
        #expect(untrusted.detail.contains("certificate verify failed"), "\(untrusted.detail)")
    }

    @Test func aNodeThatNeverAnswersTheHandshakeIsAConnectFailureWithinTheConnectTimeout() async throws {
        // accepts connections and never says a word
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let lines = NIOLockedValueBox<[String]>([])
        let events = Logger(label: "test.events") { _ in CapturingLogHandler(lines: lines) }
        let fixture = try await ProxyFixture.start(backends: [], events: events) { _ in
            """
            timeouts: { connect: 300ms }
            services: { secure: { nodes: [{ name: mute, host: 127.0.0.1, port: \(silent.localAddress!.port!), tls: { verify: false } }] } }
            default: { service: secure }
            """
        }
        defer { Task { await fixture.stop() } }
        // without the handshake's own deadline the request would wait for ever: the TCP connect succeeded
        let response = try await fixture.client().request(.GET, "/")
        #expect(response.status == .badGateway)
        let logged = lines.withLockedValue { $0 }.filter { $0.hasPrefix("cannot connect to node") }
        #expect(logged.first?.contains("no TLS handshake within 300 ms") == true, "\(logged)")
    }

    @Test func theHealthCheckerProbesATLSNodeWithTheTLSTheProxyCompiledAndNeverInPlaintext() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let nginx = try await nginxNode(ca)
        defer { nginx.stop() }
        let runtime = try RuntimeConfig(config: FulcrumConfig.parse("""
            listen: [{ port: 0 }]
            services: { secure: { health_check: { type: http, path: /, interval: 200ms, timeout: 200ms },
              nodes: [{ name: n1, host: 127.0.0.1, port: \(nginx.port), tls: { ca_file: \(ca.certificatePath), server_name: node.internal } }] } }
            """), generation: 1)
        func firstResult(nodeTLS: [[UpstreamTLS?]]) async throws -> ProbeResult {
            let results = NIOLockedValueBox<[ProbeResult]>([])
            let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { _, _, result in
                results.withLockedValue { $0.append(result) }
            }
            checker.apply(runtime.config, nodeTLS: nodeTLS)
            defer { checker.stop() }
            for _ in 0..<100 where results.withLockedValue({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(50)) }
            return try #require(results.withLockedValue { $0.first })
        }
        let compiled = try await firstResult(nodeTLS: runtime.nodeTLS)
        #expect(compiled.success, "\(compiled.detail)")
        let missing = try await firstResult(nodeTLS: [])
        #expect(!missing.success)
        #expect(missing.detail == "no TLS context compiled for the node")
    }
}
