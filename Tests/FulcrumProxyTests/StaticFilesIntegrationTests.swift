import Foundation
import FulcrumCore
import FulcrumProxy
import NIOCore
import Testing
import RealSockets

/// Static routes through a real proxy on loopback, serving a real directory: conditional and
/// range requests, directories, and every way of reaching outside the root.
@Suite(.realSockets) struct StaticFilesIntegrationTests {
    /// A directory `public` with files, beside `secret.txt`, which must never be served.
    static func makeSite() throws -> URL {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-static-\(UUID().uuidString)")
        let root = base.appendingPathComponent("public")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("docs"), withIntermediateDirectories: true)
        try "top secret\n".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try "<h1>home</h1>\n".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "docs index\n".write(to: root.appendingPathComponent("docs/index.html"), atomically: true, encoding: .utf8)
        try "body { color: red }\n".write(to: root.appendingPathComponent("site.css"), atomically: true, encoding: .utf8)
        var big = Data(count: 1 << 20)
        for index in 0..<big.count { big[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }
        try big.write(to: root.appendingPathComponent("big.bin"))
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("leak.txt").path, withDestinationPath: "../secret.txt")
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("up").path, withDestinationPath: "..")
        return base
    }

    static func start(_ base: URL) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: []) { _ in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
            routes:
              - { name: site, match: { path_prefix: /static/ }, strip_prefix: /static, static: { root: '\(base.path)/public' } }
            """
        }
    }

    /// One request on its own connection; the status line, the fields and the body.
    static func get(_ fixture: ProxyFixture, _ target: String, method: String = "GET", _ fields: [String] = []) async throws -> (status: Int, head: String, body: [UInt8]) {
        let response = try await AccessIntegrationTests.sendBytes(fixture, method: method, target, fields)
        guard let end = response.indices.dropLast(3).first(where: { response[$0] == 13 && response[$0 + 1] == 10 && response[$0 + 2] == 13 && response[$0 + 3] == 10 }) else {
            return (0, "", [])
        }
        let head = String(decoding: response[..<end], as: UTF8.self)
        return (Int(head.dropFirst(9).prefix(3)) ?? 0, head, Array(response[(end + 4)...]))
    }

    static func field(_ name: String, in head: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ": ") }.map { String($0.dropFirst(name.count + 2)) }
    }

    @Test func filesAreServedWithTheirTypeLengthAndValidators() async throws {
        let base = try Self.makeSite()
        let fixture = try await Self.start(base)
        let css = try await Self.get(fixture, "/static/site.css")
        #expect(css.status == 200)
        #expect(String(decoding: css.body, as: UTF8.self) == "body { color: red }\n")
        #expect(Self.field("Content-Type", in: css.head) == "text/css; charset=utf-8")
        #expect(Self.field("Content-Length", in: css.head) == "20")
        let tag = try #require(Self.field("ETag", in: css.head))
        let modified = try #require(Self.field("Last-Modified", in: css.head))
        #expect(modified.hasSuffix(" GMT"))
        #expect(try await Self.get(fixture, "/static/site.css", ["If-None-Match: \(tag)"]).status == 304)
        #expect(try await Self.get(fixture, "/static/site.css", ["If-Modified-Since: \(modified)"]).status == 304)
        #expect(try await Self.get(fixture, "/static/site.css", ["If-None-Match: \"other\""]).status == 200)
        let head = try await Self.get(fixture, "/static/site.css", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty && Self.field("Content-Length", in: head.head) == "20")
        #expect(try await Self.get(fixture, "/static/site.css", method: "POST").status == 405)
        #expect(try await Self.get(fixture, "/static/missing.css").status == 404)

        // directories: the index, and a redirect to the slash first
        let home = try await Self.get(fixture, "/static/")
        #expect(home.status == 200 && String(decoding: home.body, as: UTF8.self) == "<h1>home</h1>\n")
        let docs = try await Self.get(fixture, "/static/docs?x=1")
        #expect(docs.status == 301 && Self.field("Location", in: docs.head) == "/static/docs/?x=1")
        #expect(String(decoding: try await Self.get(fixture, "/static/docs/").body, as: UTF8.self) == "docs index\n")
        await fixture.stop()
        try? FileManager.default.removeItem(at: base)
    }

    @Test func aMebibyteFileArrivesWholeAndRangesArrivePartly() async throws {
        let base = try Self.makeSite()
        let fixture = try await Self.start(base)
        let expected = try [UInt8](Data(contentsOf: base.appendingPathComponent("public/big.bin")))
        let whole = try await Self.get(fixture, "/static/big.bin")
        #expect(whole.status == 200 && whole.body == expected)
        #expect(Self.field("Content-Type", in: whole.head) == "application/octet-stream")
        let part = try await Self.get(fixture, "/static/big.bin", ["Range: bytes=1000-1999"])
        #expect(part.status == 206 && part.body == Array(expected[1000...1999]))
        #expect(Self.field("Content-Range", in: part.head) == "bytes 1000-1999/1048576")
        let suffix = try await Self.get(fixture, "/static/big.bin", ["Range: bytes=-10"])
        #expect(suffix.status == 206 && suffix.body == Array(expected.suffix(10)))
        let open = try await Self.get(fixture, "/static/big.bin", ["Range: bytes=1048570-"])
        #expect(open.status == 206 && open.body.count == 6)
        let beyond = try await Self.get(fixture, "/static/big.bin", ["Range: bytes=2000000-"])
        #expect(beyond.status == 416 && Self.field("Content-Range", in: beyond.head) == "bytes */1048576")
        let stale = try await Self.get(fixture, "/static/big.bin", ["Range: bytes=0-9", "If-Range: \"stale\""])
        #expect(stale.status == 200 && stale.body.count == expected.count)
        await fixture.stop()
        try? FileManager.default.removeItem(at: base)
    }

    @Test func aRootThatIsNotADirectoryIsRefusedWithItsField() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
            routes:
              - { name: a, match: { path_prefix: /a/ }, static: { root: /nonexistent/fulcrum-site } }
              - { name: b, match: { path_prefix: /b/ }, static: { root: /etc/hostname } }
            """)
        do {
            _ = try RuntimeConfig(config: config, generation: 1)
            Issue.record("a missing root was accepted")
        } catch {
            #expect(error.issues.map { "\($0.path): \($0.message)" } == [
                "routes[0].static.root: '/nonexistent/fulcrum-site' does not exist or cannot be read",
                "routes[1].static.root: '/etc/hostname' is not a directory",
            ])
        }
    }

    @Test func nothingOutsideTheRootCanBeRead() async throws {
        let base = try Self.makeSite()
        let fixture = try await Self.start(base)
        let attempts = [
            "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E/secret.txt", "/static/.%2e/secret.txt",
            "/static/docs/../../secret.txt", "/static/..%5csecret.txt", "/static/%5c..%5csecret.txt", "/static/leak.txt",
            "/static/up/secret.txt", "/static/secret.txt%00.css", "/static/%00", "/static/docs/..%2f..%2fsecret.txt",
            "/static//../secret.txt", "/static/%252e%252e/secret.txt",
        ]
        for target in attempts {
            let response = try await Self.get(fixture, target)
            #expect([400, 403, 404].contains(response.status), "\(target): \(response.status)")
            #expect(!String(decoding: response.body, as: UTF8.self).contains("top secret"), "\(target)")
        }
        #expect(try await Self.get(fixture, "/static/leak.txt").status == 403)  // the link exists, and leads out
        await fixture.stop()
        try? FileManager.default.removeItem(at: base)
    }
}
