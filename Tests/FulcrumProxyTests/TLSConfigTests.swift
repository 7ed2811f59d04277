import FulcrumCore
import FulcrumProxy
import Foundation
import Testing
import TestCertificates

/// Certificates are read when a configuration is compiled: `fulcrum check` and a reload refuse
/// what would only fail at the first handshake, naming the field.
@Suite struct TLSConfigTests {
    private func compile(_ ca: TestCertificateAuthority, _ entries: [(cert: String, key: String)]) throws -> RuntimeConfig {
        let list = entries.map { "{ cert: '\($0.cert)', key: '\($0.key)' }" }.joined(separator: ", ")
        return try RuntimeConfig(config: FulcrumConfig.parse("""
            listen: [{ port: 0 }, { address: 127.0.0.1, port: 0, tls: { certificates: [\(list)] } }]
            services: { s: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }] } }
            """), generation: 1)
    }

    private func issues(_ body: () throws -> Void) -> [String] {
        do { try body(); return [] } catch let error as ConfigError { return error.issues.map(\.description) } catch { return ["\(error)"] }
    }

    @Test func rsaAndECDSACertificatesLoadWithTheirNamesExpiryAndFingerprint() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let ecdsa = try ca.issue("ecdsa", names: ["a.test", "*.a.test"], validFor: 9.5)
        let rsa = try ca.issue("rsa", names: ["b.test"], key: .rsa)
        let runtime = try compile(ca, [ecdsa, rsa])
        #expect(runtime.listenerCertificates[0] == nil)
        let served = try #require(runtime.listenerCertificates[1]).certificates
        #expect(served.map(\.names) == [["a.test", "*.a.test"], ["b.test"]])
        #expect(served[0].subject == "CN=a.test")
        #expect(served[0].issuer == "CN=Fulcrum Test CA")
        let daysLeft = (served[0].notAfter - Int64(Date().timeIntervalSince1970)) / 86_400
        #expect(daysLeft == 9)
        #expect(served[0].fingerprint.split(separator: ":").count == 32)
        #expect(served[0].fingerprint != served[1].fingerprint)
        let now = Int64(Date().timeIntervalSince1970)
        #expect(runtime.warnings(now: now).map(\.description) == ["listen[1].tls.certificates[0].cert: '\(ecdsa.cert)' expires in 9 days"])
    }

    @Test func aKeyOfAnotherCertificateIsRefusedNamingTheKeyField() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let one = try ca.issue("one", names: ["one.test"])
        let two = try ca.issue("two", names: ["two.test"], key: .rsa)
        let found = issues { _ = try compile(ca, [(one.cert, two.key)]) }
        #expect(found == ["listen[1].tls.certificates[0].key: '\(two.key)' is not the private key of the certificate in '\(one.cert)'"])
    }

    @Test func aFileThatCannotBeReadOrParsedIsRefusedNamingItsField() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let good = try ca.issue("good", names: ["good.test"])
        let missing = ca.folder.appendingPathComponent("missing.pem").path
        let found = issues { _ = try compile(ca, [(missing, good.key), (good.cert, good.cert), (good.key, good.key)]) }
        #expect(found == [
            "listen[1].tls.certificates[0].cert: cannot read '\(missing)': No such file or directory",
            "listen[1].tls.certificates[1].key: '\(good.cert)' holds no PEM private key that can be read (RSA or ECDSA, unencrypted)",
            "listen[1].tls.certificates[2].cert: '\(good.key)' holds no PEM certificate that can be read",
        ])
    }

    @Test func anExpiredCertificateIsAWarningNotAnError() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let expired = try ca.issue("expired", names: ["old.test"], expiredDaysAgo: 3.5)
        let runtime = try compile(ca, [expired])
        #expect(runtime.warnings(now: Int64(Date().timeIntervalSince1970)).map(\.description) == [
            "listen[1].tls.certificates[0].cert: '\(expired.cert)' expired 3 days ago"
        ])
    }

    private func compileNode(_ tls: String) throws -> RuntimeConfig {
        try RuntimeConfig(config: FulcrumConfig.parse("""
            listen: [{ port: 0 }]
            services: { s: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }, { name: b, host: localhost, port: 443, tls: \(tls) }] } }
            """), generation: 1)
    }

    @Test func aNodesCAFileAndClientCertificateAreReadAtCompileTimeNamingTheirFields() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let client = try ca.issue("client", names: ["gateway.test"])
        let other = try ca.issue("other", names: ["other.test"])
        let missing = ca.folder.appendingPathComponent("missing.pem").path
        #expect(throws: Never.self) { try compileNode("{ ca_file: '\(ca.certificatePath)', client_certificate: { cert: '\(client.cert)', key: '\(client.key)' } }") }
        #expect(issues { _ = try compileNode("{ ca_file: '\(missing)' }") } == [
            "services.s.nodes[1].tls.ca_file: cannot read '\(missing)': No such file or directory"
        ])
        #expect(issues { _ = try compileNode("{ ca_file: '\(client.key)' }") } == [
            "services.s.nodes[1].tls.ca_file: '\(client.key)' holds no PEM certificate that can be read"
        ])
        #expect(issues { _ = try compileNode("{ client_certificate: { cert: '\(client.cert)', key: '\(other.key)' } }") } == [
            "services.s.nodes[1].tls.client_certificate.key: '\(other.key)' is not the private key of the certificate in '\(client.cert)'"
        ])
    }

    @Test func nodeTLSSettingsThatCannotWorkAreRefusedByTheParser() {
        let found = issues {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 0 }]
                services: { s: { nodes: [
                  { name: a, host: h, port: 1, tls: { verify: false, ca_file: ca.pem } },
                  { name: b, host: h, port: 1, tls: { server_name: 10.0.0.1 } },
                  { name: c, host: h, port: 1, tls: { verfy: true } },
                  { name: d, host: h, port: 1, tls: { client_certificate: { cert: c.pem } } } ] } }
                """)
        }
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.hasPrefix("services.s.nodes[0].tls.ca_file") && $0.contains("only used to verify") })
        #expect(found.contains { $0.hasPrefix("services.s.nodes[1].tls.server_name") && $0.contains("not a host name") })
        #expect(found.contains { $0.hasPrefix("services.s.nodes[2].tls.verfy") && $0.contains("did you mean 'verify'") })
        #expect(found.contains { $0.hasPrefix("services.s.nodes[3].tls.client_certificate.key") })
    }
}
