import FulcrumCore
import FulcrumProxy
import FulcrumTLS
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

    @Test func storedCertificatesAreServedBeforeFilesAndCanBeTheDefault() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let file = try ca.issue("file", names: ["shared.test", "file.test"])
        let upload = try ca.issue("upload", names: ["shared.test"], validFor: 20.5)
        let bundle = CertificateBundle(
            chainPEM: try String(contentsOfFile: upload.cert, encoding: .utf8), keyPEM: try String(contentsOfFile: upload.key, encoding: .utf8))
        let digest = try ServedCertificate(bundle: bundle, name: "up", certField: "cert", keyField: "key").chainSHA256
        #expect(digest.count == 64 && digest.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        func config(default name: String?, files: Bool = true) throws -> FulcrumConfig {
            try FulcrumConfig.parse("""
                stored_certificates: { up: { chain_sha256: \(digest) } }
                listen: [{ port: 0, tls: { certificates: [\(files ? "{ cert: '\(file.cert)', key: '\(file.key)' }" : "")]\(name.map { ", default_certificate: \($0)" } ?? "") } }]
                services: { s: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }] } }
                """)
        }
        let runtime = try RuntimeConfig(config: config(default: "up"), generation: 1, bundles: [digest: bundle])
        let served = try #require(runtime.listenerCertificates[0])
        #expect(served.certificates.map(\.source) == [.stored("up"), .file(file.cert)])
        #expect(served.certificate(for: "shared.test")?.source == .stored("up"), "the upload takes the name over from the file")
        #expect(served.certificate(for: "file.test")?.source == .file(file.cert))
        #expect(served.certificate(for: "unknown.test")?.source == .stored("up"))
        #expect(try RuntimeConfig(config: config(default: file.cert), generation: 1, bundles: [digest: bundle])
            .listenerCertificates[0]?.certificate(for: nil)?.source == .file(file.cert))
        #expect(runtime.warnings(now: Int64(Date().timeIntervalSince1970)).map(\.description) == [
            "stored_certificates.up: stored certificate 'up' expires in 20 days"
        ])
        // a listener may serve stored certificates only
        #expect(try RuntimeConfig(config: config(default: nil, files: false), generation: 1, bundles: [digest: bundle])
            .listenerCertificates[0]?.certificates.count == 1)
        // without the store's bundle (a file run without --store), the reference is named
        #expect(issues { _ = try RuntimeConfig(config: config(default: nil), generation: 1) } == [
            "stored_certificates.up.chain_sha256: no certificate with this digest in the store (stored certificates are served with 'serve --store')"
        ])
        #expect(issues { _ = try config(default: "upp") } == [
            "listen[0].tls.default_certificate (line 2): 'upp' is neither the cert of one of the certificates nor a stored certificate (did you mean 'up'?)"
        ])
    }

    @Test func storedCertificateReferencesAreCheckedByTheParser() {
        func parse(_ stored: String, certificates: String = "") -> [String] {
            issues {
                _ = try FulcrumConfig.parse("""
                    \(stored)
                    listen: [{ port: 0, tls: { \(certificates) } }]
                    services: { s: { nodes: [{ name: a, host: 127.0.0.1, port: 1 }] } }
                    """)
            }
        }
        #expect(parse("") == [
            "listen[0].tls.certificates (line 2): at least one certificate is required (or one uploaded through the admin API, with a store)"
        ])
        #expect(parse("stored_certificates: { 'a b': { chain_sha256: \(String(repeating: "0", count: 64)) } }") == [
            "stored_certificates.a b (line 1): certificate names may use letters, digits, '-', '_' and '.' only"
        ])
        #expect(parse("stored_certificates: { up: { chain_sha256: ABC } }", certificates: "certificates: []").first
            == "stored_certificates.up.chain_sha256 (line 1): 'ABC' is not a SHA-256 digest (64 lowercase hex digits)")
        #expect(parse("stored_certificates: { up: { sha: x } }").first?.hasPrefix("stored_certificates.up.sha (line 1): unknown field") == true)
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
