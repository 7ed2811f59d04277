import Foundation
import FulcrumCore
import RealSockets
import TestCertificates
import Testing

/// `fulcrum serve` with a TLS listener, reached by curl as a user's client would, certificate
/// files renewed in place and picked up on SIGHUP, and certificates uploaded to the store.
@Suite(.realSockets) struct TLSCommandLineTests {
    /// Runs curl to completion; returns its exit status and what it printed (body or error).
    private static func curl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let result = try await CommandLineTests.run(
            ["--silent", "--show-error", "--max-time", "5"] + arguments, program: URL(fileURLWithPath: "/usr/bin/curl"))
        return (result.status, result.stdout + result.stderr)
    }

    @Test func curlGetsHTTPSAndACertificateRenewedInPlaceIsServedAfterSIGHUPWithoutAFailedRequest() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let backend = try await LineBackend.start(name: "cli-tls")
        let port = Int.random(in: 20_000..<32_000)
        let path = try CommandLineTests.write("""
            listen: [{ address: 127.0.0.1, port: \(port), tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(backend.port) }] } }
            default: { service: s }
            """)
        defer { CommandLineTests.remove(path) }
        let check = try await CommandLineTests.run(["check", "-c", path])
        #expect(check.status == 0 && check.stdout.contains("ok (1 listeners"), "\(check.stdout)")
        #expect(!check.stdout.contains("warning"), "a certificate valid for 90 days is no warning")

        let (process, err) = try CommandLineTests.serve(path)
        defer { if process.isRunning { process.terminate() } }
        func get(_ name: String) async throws -> (status: Int32, output: String) {
            try await Self.curl(["--cacert", ca.certificatePath, "--resolve", "\(name):\(port):127.0.0.1", "https://\(name):\(port)/"])
        }
        var first = (status: Int32(-1), output: "")
        for _ in 0..<100 {
            first = try await get("site.test")
            if first.status == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(first.status == 0 && first.output == "cli-tls", "\(first)")
        let mismatch = try await get("www.site.test")
        // no certificate has the name and there is no default: the handshake ends with an alert
        #expect(mismatch.status == 35 && mismatch.output.contains("alert"), "\(mismatch)")

        // a client keeps making new connections while the certificate is renewed and reloaded
        let failures = Task {
            var failed: [String] = []
            for _ in 0..<40 {
                let result = try await get("site.test")
                if result.status != 0 || result.output != "cli-tls" { failed.append("\(result)") }
            }
            return failed
        }
        try await Task.sleep(for: .milliseconds(100))
        try ca.issue("site", names: ["site.test", "www.site.test"])  // renewed in place with a new name
        kill(process.processIdentifier, SIGHUP)
        var renewed = (status: Int32(-1), output: "")
        for _ in 0..<100 {
            renewed = try await get("www.site.test")
            if renewed.status == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(renewed.status == 0 && renewed.output == "cli-tls", "new handshakes get the renewed certificate: \(renewed)")
        #expect(try await failures.value == [])

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("configuration file unchanged from the active version"))
        #expect(log.contains("certificates reloaded") && log.contains("changed=1"), "\(log)")
        #expect(!log.contains("PRIVATE KEY"), "no key material in the log")
        await backend.stop()
    }

    @Test func certificatesUploadedThroughTheAdminAPIAreServedAtOnceKeptOnSIGHUPAndTheirKeysStayInTheStore() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let backend = try await LineBackend.start(name: "cli-store-tls")
        let port = Int.random(in: 20_000..<32_000)
        let store = StoreCommandLineTests.temporaryStore()
        defer { for suffix in ["", "-wal", "-shm"] { CommandLineTests.remove(store + suffix) } }
        let path = try CommandLineTests.write("""
            listen: [{ address: 127.0.0.1, port: \(port), tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }]
            access_log: false
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(backend.port) }] } }
            default: { service: s }
            """)
        defer { CommandLineTests.remove(path) }
        let server = try StoreCommandLineTests.Server(config: path, store: store, adminPort: StoreCommandLineTests.adminPort())
        try await server.ready()
        func get(_ name: String) async throws -> (status: Int32, output: String) {
            try await Self.curl(["--cacert", ca.certificatePath, "--resolve", "\(name):\(port):127.0.0.1", "https://\(name):\(port)/"])
        }
        func upload(_ name: String, _ files: (cert: String, key: String)) async throws -> (status: Int, json: ConfigDocument?, text: String) {
            let body = ConfigDocument.mapping([
                .init("cert", .string(try String(contentsOfFile: files.cert, encoding: .utf8))),
                .init("key", .string(try String(contentsOfFile: files.key, encoding: .utf8))),
            ])
            return try await server.request("PUT", "/api/v1/certificates/\(name)", body: body.jsonText())
        }
        #expect(try await get("site.test").output == "cli-store-tls")
        #expect(try await get("api.test").status == 35, "no certificate has the name yet")

        // a client keeps making new connections while certificates are uploaded, replaced and removed
        let failures = Task {
            var failed: [String] = []
            for _ in 0..<60 {
                let result = try await get("site.test")
                if result.status != 0 || result.output != "cli-store-tls" { failed.append("\(result)") }
            }
            return failed
        }
        let first = try await upload("api", try ca.issue("api", names: ["api.test"]))
        #expect(first.status == 200 && first.json?.value(at: ["version", "number"]) == .int(2), "\(String(describing: first.json))")
        #expect(try await get("api.test").output == "cli-store-tls", "the next handshake gets the upload")
        let renewed = try await upload("api", try ca.issue("api", names: ["api.test", "api2.test"]))
        #expect(renewed.status == 200)
        #expect(try await get("api2.test").output == "cli-store-tls", "the replacement is served at once")

        // SIGHUP imports the file again, which has no stored certificates: they stay
        kill(server.process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await server.request("GET", "/api/v1/config").json?.value(at: ["number"]) == .int(3))
        #expect(try await get("api2.test").output == "cli-store-tls")

        #expect(try await server.request("DELETE", "/api/v1/certificates/api").status == 200)
        #expect(try await get("api2.test").status == 35)
        #expect(try await failures.value == [])

        let mode = try FileManager.default.attributesOfItem(atPath: store)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the store holds private keys")
        let exported = try await CommandLineTests.run(["config", "export", "--store", store, "--version", "3"])
        #expect(exported.status == 0 && exported.stdout.contains("chain_sha256:"), "\(exported.stdout)\(exported.stderr)")
        let audit = try await server.request("GET", "/api/v1/audit")
        #expect(audit.status == 200)
        let log = await server.stop()
        for text in [exported.stdout, "\(String(describing: audit.json))", log] {
            #expect(!text.contains("PRIVATE KEY"), "\(text)")
        }
        await backend.stop()
    }

    @Test func aTLS12ClientGetsTheServersSuiteWhateverItsOrderAndNothingWeakIsAccepted() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let site = try ca.issue("site", names: ["site.test"])
        let port = Int.random(in: 20_000..<32_000)
        let path = try CommandLineTests.write("""
            listen: [{ address: 127.0.0.1, port: \(port), tls: { certificates: [{ cert: \(site.cert), key: \(site.key) }] } }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
            """)
        defer { CommandLineTests.remove(path) }
        let (process, _) = try CommandLineTests.serve(path)
        defer { if process.isRunning { process.terminate() } }
        func handshake(_ options: [String]) async throws -> String {
            let result = try await CommandLineTests.run(
                ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "site.test"] + options, program: URL(fileURLWithPath: "/usr/bin/openssl"))
            return result.stdout + result.stderr
        }
        var first = ""
        for _ in 0..<100 {
            first = try await handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"])
            if first.contains("Cipher is") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // testssl rates a server whose suite follows the client's order HIGH ("no cipher order")
        #expect(first.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "\(first)")
        let reversed = try await handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"])
        #expect(reversed.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "\(reversed)")
        for weak in [["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], ["-tls1_2", "-cipher", "AES128-GCM-SHA256"], ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"]] {
            let refused = try await handshake(weak)
            #expect(!refused.contains("Cipher is ECDHE") && !refused.contains("Cipher is AES"), "\(weak): \(refused)")
        }
        #expect(try await handshake(["-tls1_3"]).contains("TLSv1.3"))
    }

    @Test func checkNamesAKeyThatIsNotTheCertificatesAndWarnsOfExpiry() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let one = try ca.issue("one", names: ["one.test"], validFor: 12.5)
        let two = try ca.issue("two", names: ["two.test"])
        func config(_ cert: String, _ key: String) -> String {
            """
            listen: [{ port: 8443, tls: { certificates: [{ cert: \(cert), key: \(key) }] } }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
            """
        }
        let wrong = try CommandLineTests.write(config(one.cert, two.key))
        defer { CommandLineTests.remove(wrong) }
        let refused = try await CommandLineTests.run(["check", "-c", wrong])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("listen[0].tls.certificates[0].key: '\(two.key)' is not the private key of the certificate in '\(one.cert)'"), "\(refused.stdout)")
        let soon = try CommandLineTests.write(config(one.cert, one.key))
        defer { CommandLineTests.remove(soon) }
        let warned = try await CommandLineTests.run(["check", "-c", soon])
        #expect(warned.status == 0)
        #expect(warned.stdout.contains("warning: listen[0].tls.certificates[0].cert: '\(one.cert)' expires in 12 days"), "\(warned.stdout)")
    }
}
