import FulcrumCore
import FulcrumProxy
import NIOCore
import NIOSSL
import RealSockets
import Testing
import TestCertificates
import X509

/// TLS on a listener, with real handshakes on 127.0.0.1 and certificates a test CA issues:
/// which certificate each client name gets, refusals, and certificates swapped by a reload.
@Suite(.realSockets) struct TLSIntegrationTests {
    /// The DNS names of the certificate the server presented on `client`'s connection.
    private func servedNames(_ client: TestClient) async throws -> [String] {
        guard let certificate = try await client.channel.nioSSL_peerCertificate().get() else { return [] }
        let leaf = try Certificate(derEncoded: try certificate.toDERBytes())
        return try leaf.extensions.subjectAlternativeNames?.compactMap { name in
            if case .dnsName(let dns) = name { return dns } else { return nil }
        } ?? []
    }

    private func tlsListener(_ ca: TestCertificateAuthority, files: [String], default defaultFile: String?) -> String {
        let entries = files.map { "{ cert: \(ca.folder.path)/\($0).pem, key: \(ca.folder.path)/\($0).key }" }.joined(separator: ", ")
        let defaultLine = defaultFile.map { ", default_certificate: \(ca.folder.path)/\($0).pem" } ?? ""
        return "{ address: 127.0.0.1, port: 0, tls: { certificates: [\(entries)]\(defaultLine) } }"
    }

    @Test func eachHandshakeGetsTheExactNameThenTheWildcardThenTheDefault() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        try ca.issue("fallback", names: ["fallback.test"])
        try ca.issue("wildcard", names: ["*.example.test"], key: .rsa)
        try ca.issue("exact", names: ["api.example.test"])
        let fixture = try await ProxyFixture.start(
            backends: ["tls-node"], listener: tlsListener(ca, files: ["fallback", "wildcard", "exact"], default: "fallback")
        ) { ports in
            "services: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(ports["tls-node"]!) }] } }\ndefault: { service: web }\n"
        }
        defer { Task { await fixture.stop() } }
        let expected: [(String?, [String])] = [
            ("api.example.test", ["api.example.test"]),  // exact before the wildcard that also covers it
            ("API.Example.Test", ["api.example.test"]),
            ("www.example.test", ["*.example.test"]),
            ("a.b.example.test", ["fallback.test"]),  // a wildcard covers one label only
            ("example.test", ["fallback.test"]),
            ("other.test", ["fallback.test"]),
            (nil, ["fallback.test"]),  // no SNI
        ]
        for (name, names) in expected {
            // the chain is verified against the test CA; which names it has is checked here
            let tls = TestClient.TLS(serverName: name, trustedCA: ca.certificatePath, checksName: false)
            let client = try await TestClient.connect(port: fixture.port, tls: tls)
            let response = try await client.request(.GET, "/", headers: [("Host", name ?? "localhost")])
            #expect(response.status == .ok)
            #expect(response.body.contains("x-forwarded-proto: https"))
            #expect(try await servedNames(client) == names, "server name \(name ?? "none")")
            await client.close()
        }
    }

    @Test func aNameWithoutACertificateIsRefusedWhenThereIsNoDefault() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        try ca.issue("exact", names: ["api.example.test"])
        let fixture = try await ProxyFixture.start(backends: ["tls-refuse"], listener: tlsListener(ca, files: ["exact"], default: nil)) { ports in
            "services: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(ports["tls-refuse"]!) }] } }\ndefault: { service: web }\n"
        }
        defer { Task { await fixture.stop() } }
        let known = try await TestClient.connect(port: fixture.port, tls: .init(serverName: "api.example.test", trustedCA: ca.certificatePath))
        #expect(try await known.request(.GET, "/").status == .ok)
        await known.close()
        for name in ["other.test", nil] as [String?] {
            // without the fix the placeholder certificate would be presented to anyone
            let client = try await TestClient.connect(port: fixture.port, tls: .init(serverName: name, trustedCA: ca.certificatePath, checksName: false))
            await #expect(throws: (any Error).self, "server name \(name ?? "none")") {
                _ = try await client.request(.GET, "/")
            }
            await client.close()
        }
    }

    @Test func aReloadServesNewCertificatesToNewHandshakesWhileOpenConnectionsKeepTheirs() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        try ca.issue("site", names: ["old.example.test"])
        let listener = tlsListener(ca, files: ["site"], default: "site")
        let services = { (port: Int) in "services: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(port) }] } }\ndefault: { service: web }\n" }
        let fixture = try await ProxyFixture.start(backends: ["tls-reload"], listener: listener) { services($0["tls-reload"]!) }
        defer { Task { await fixture.stop() } }
        let before = try await TestClient.connect(port: fixture.port, tls: .init(serverName: "old.example.test", trustedCA: ca.certificatePath))
        #expect(try await before.request(.GET, "/").status == .ok)

        try ca.issue("site", names: ["new.example.test"])  // renewed in place, as certbot does
        try fixture.reload(services(fixture.backends["tls-reload"]!.port), generation: 2, listener: listener)
        try await Task.sleep(for: .milliseconds(50))  // the reload reaches the event loops

        let after = try await TestClient.connect(port: fixture.port, tls: .init(serverName: "new.example.test", trustedCA: ca.certificatePath))
        #expect(try await after.request(.GET, "/").status == .ok)
        #expect(try await servedNames(after) == ["new.example.test"])
        // the connection opened before the reload goes on with the certificate it was given
        #expect(try await before.request(.GET, "/").status == .ok)
        #expect(try await servedNames(before) == ["old.example.test"])
        await before.close()
        await after.close()
    }
}

/// Connections whose protocol is still unknown (TLS handshake, h2c preface) have a deadline.
@Suite(.realSockets) struct ProtocolDeadlineTests {
    @Test(arguments: ["tls", "h2c"])
    func aConnectionThatNeverFinishesItsHandshakeIsClosedAfterClientHead(_ kind: String) async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let listener = kind == "tls"
            ? "{ address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }"
            : "{ address: 127.0.0.1, port: 0, h2c: true }"
        let fixture = try await ProxyFixture.start(backends: ["deadline-\(kind)"], listener: listener) { ports in
            "timeouts: { client_head: 300ms }\nservices: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(ports["deadline-\(kind)"]!) }] } }\n"
        }
        defer { Task { await fixture.stop() } }
        // a TLS client hello cut short, or the start of the HTTP/2 preface, then nothing
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(kind == "tls" ? [0x16, 0x03, 0x01, 0x00, 0xF0, 0x01] : Array("PRI * HTTP/2.0\r\n".utf8))
        // without the deadline nothing times a connection before its protocol is known
        #expect(try await connection.closed(within: .seconds(3)))
        await connection.close()
    }
}
