import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import RealSockets
import TestCertificates

/// Large bodies, upgrades, reloads and drains through a running proxy.
@Suite(.realSockets) struct StreamingIntegrationTests {
    static func fixture(_ name: String) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: [name]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p[name]!) }] } }\ndefault: { service: s }"
        }
    }

    /// Resident memory of this process in bytes.
    static func residentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// Runs `body` while sampling resident memory; returns its result and the peak growth.
    static func peakGrowth<T: Sendable>(_ body: () async throws -> T) async throws -> (T, Int) {
        let baseline = residentBytes()
        let sampler = Task {
            var peak = 0
            while !Task.isCancelled {
                peak = max(peak, residentBytes())
                try? await Task.sleep(for: .milliseconds(20))
            }
            return peak
        }
        let result = try await body()
        sampler.cancel()
        return (result, max(0, await sampler.value - baseline))
    }

    @Test func largeBodiesStreamBothWaysWithBoundedMemory() async throws {
        let fixture = try await Self.fixture("stream")
        let client = try await fixture.client()
        let total = 256 << 20
        let (upload, uploadGrowth) = try await Self.peakGrowth { try await client.upload("/upload", total: total) }
        #expect(upload.status == .ok)
        #expect(upload.body == "stream received \(total)\n")
        #expect(uploadGrowth < 64 << 20, "resident memory grew by \(uploadGrowth >> 20) MiB while uploading 256 MiB")

        let (download, downloadGrowth) = try await Self.peakGrowth { try await client.request(.GET, "/download/\(total)") }
        #expect(download.status == .ok)
        #expect(download.bodyBytes == total)
        #expect(downloadGrowth < 64 << 20, "resident memory grew by \(downloadGrowth >> 20) MiB while downloading 256 MiB")
        await client.close()
        await fixture.stop()
    }

    /// A client connection that reads nothing (its receive buffer fills and stays full).
    static func nonReadingConnection(port: Int) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// Backpressure towards the node: while the client reads nothing, the proxy stops reading the
    /// node's response, so the node can only send what the socket buffers on the way hold.
    @Test func aClientThatStopsReadingHoldsTheNodeBack() async throws {
        let fixture = try await Self.fixture("stall-download")
        let channel = try await Self.nonReadingConnection(port: fixture.port)
        try await channel.writeAndFlush(ByteBuffer(string: "GET /download/\(1 << 30) HTTP/1.1\r\nHost: x\r\n\r\n"))
        try await Task.sleep(for: .seconds(1))
        let sent = fixture.backends["stall-download"]!.downloadBytesSent
        #expect(sent > 0, "the download did not start")
        #expect(sent < 64 << 20, "the node sent \(sent >> 20) MiB to a client that reads nothing")
        try await channel.close()
        await fixture.stop()
    }

    /// Backpressure towards the client: while the node reads nothing, the proxy stops reading the
    /// request body, so the client can only write what the socket buffers on the way hold.
    @Test func aNodeThatStopsReadingHoldsTheClientBack() async throws {
        let fixture = try await Self.fixture("stall-upload")
        let channel = try await Self.nonReadingConnection(port: fixture.port)
        try await channel.writeAndFlush(ByteBuffer(string: "POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: \(1 << 30)\r\n\r\n"))
        let written = NIOLockedValueBox(0)
        let writer = Task {
            let piece = ByteBuffer(repeating: UInt8(ascii: "x"), count: 65_536)
            while !Task.isCancelled {
                try await channel.writeAndFlush(piece)  // completes once the piece is in the socket
                written.withLockedValue { $0 += piece.readableBytes }
            }
        }
        try await Task.sleep(for: .seconds(1))
        let sent = written.withLockedValue { $0 }
        #expect(sent > 0, "the upload did not start")
        #expect(sent < 64 << 20, "the client wrote \(sent >> 20) MiB to a node that reads nothing")
        writer.cancel()
        try await channel.close()
        _ = await writer.result
        await fixture.stop()
    }

    /// Over plaintext (ws) and over a TLS listener (wss: the upgrade and the frames inside TLS,
    /// the node reached in plaintext).
    @Test(arguments: ["ws", "wss"]) func webSocketEchoThroughTheProxy(_ scheme: String) async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let files = try ca.issue("site", names: ["localhost"])
        let listener = scheme == "wss"
            ? "{ address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: \(files.cert), key: \(files.key) }], alpn: [http/1.1] } }"
            : "{ address: 127.0.0.1, port: 0 }"
        let fixture = try await ProxyFixture.start(backends: ["websocket"], listener: listener) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["websocket"]!) }] } }\ndefault: { service: s }"
        }
        let tls = scheme == "wss" ? TestClient.TLS(serverName: "localhost", trustedCA: ca.certificatePath) : nil
        let connection = try await RawConnection.connect(port: fixture.port, tls: tls)
        try await connection.send(Array("""
            GET /ws HTTP/1.1\r
            Host: localhost\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            \r

            """.utf8))
        let head = try await connection.receiveHead()
        #expect(head.hasPrefix("HTTP/1.1 101 Switching Protocols"), "\(head)")
        #expect(head.lowercased().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "\(head)")
        #expect(head.lowercased().contains("upgrade: websocket"))

        for message in ["hello", "second message"] {
            let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
            let payload = Array(message.utf8).enumerated().map { $0.element ^ mask[$0.offset % 4] }
            try await connection.send([0x81, 0x80 | UInt8(payload.count)] + mask + payload)
            let expected = "echo: \(message)"
            let frame = try await connection.receive(count: 2 + expected.utf8.count)
            #expect(frame.first == 0x81)
            #expect(frame.count > 1 && Int(frame[1]) == expected.utf8.count)
            #expect(String(decoding: frame.dropFirst(2), as: UTF8.self) == expected)
        }
        await connection.close()
        await fixture.stop()
    }

    @Test func hotReloadUnderTrafficFailsNoRequest() async throws {
        let fixture = try await ProxyFixture.start(backends: ["reload-old", "reload-new"]) { p in
            "services: { s: { nodes: [{ name: old, host: 127.0.0.1, port: \(p["reload-old"]!) }] } }\ndefault: { service: s }"
        }
        let old = fixture.backends["reload-old"]!.port
        let new = fixture.backends["reload-new"]!.port
        let stop = ContinuousClock.now + .milliseconds(1500)
        let port = fixture.port
        let traffic = (0..<4).map { _ in
            Task {
                var results: [UInt] = []
                let client = try await TestClient.connect(port: port)
                while ContinuousClock.now < stop {
                    results.append((try? await client.request(.GET, "/").status.code) ?? 0)
                }
                await client.close()
                return results
            }
        }
        for generation in 2...21 {
            let target = generation % 2 == 0 ? new : old
            try fixture.reload("services: { s: { nodes: [{ name: n\(generation), host: 127.0.0.1, port: \(target) }] } }\ndefault: { service: s }", generation: generation)
            try await Task.sleep(for: .milliseconds(50))
        }
        var statuses: [UInt] = []
        for task in traffic { statuses += try await task.value }
        #expect(statuses.count > 100)
        #expect(statuses.allSatisfy { $0 == 200 }, "failed: \(statuses.filter { $0 != 200 }.count) of \(statuses.count)")
        // the last configuration (generation 21: the old backend) serves new requests
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/").backend == "reload-old")
        try fixture.reload("services: { s: { nodes: [{ name: z, host: 127.0.0.1, port: \(new) }] } }\ndefault: { service: s }", generation: 22)
        var backend: String? = nil
        for _ in 0..<50 {
            backend = try await client.request(.GET, "/").backend
            if backend == "reload-new" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(backend == "reload-new")
        await client.close()
        await fixture.stop()
    }

    @Test func drainFinishesRequestsInFlightAndStopsAccepting() async throws {
        let fixture = try await Self.fixture("drain")
        let busy = try await fixture.client()
        let idle = try await fixture.client()
        #expect(try await idle.request(.GET, "/").status == .ok)
        let inFlight = Task { try await busy.request(.GET, "/slow/400") }
        for _ in 0..<100 where fixture.backends["drain"]!.requests < 2 { try await Task.sleep(for: .milliseconds(5)) }
        let server = fixture.server
        let drain = Task { await server.drain(timeout: .seconds(5)) }
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: (any Error).self) { try await TestClient.connect(port: fixture.port) }
        await #expect(throws: (any Error).self) { try await idle.request(.GET, "/") }
        let response = try await inFlight.value
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Connection") == "close")
        #expect(await drain.value == 0, "no connection had to be cut")
        await fixture.stop()
    }

    /// A node that answers an upload before reading it (as nginx's `return 200` does): before, Fulcrum closed the client
    /// connection at once, and curl, still sending, got a reset and failed the transfer (exit 55)
    /// in 20 of 20 uploads, though it had the status. (With this machine's curl and this backend the
    /// reset did not reproduce: the test guards the delivery, not the reset.)
    @Test func aResponseBeforeTheWholeUploadReachesTheClientWhoseTransferSucceeds() async throws {
        let fixture = try await ProxyFixture.start(backends: ["early"]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["early"]!) }] } }\ndefault: { service: s }"
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)")
        try Data(repeating: 0x61, count: 8 << 20).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        for _ in 0..<3 {
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-sS", "-H", "Expect:", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(fixture.port)/early"]
            let out = Pipe(), err = Pipe()
            curl.standardOutput = out
            curl.standardError = err
            try curl.run()
            let status = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            curl.waitUntilExit()
            #expect(curl.terminationStatus == 0 && status == "200", "curl exit \(curl.terminationStatus), status \(status): \(errors)")
        }
        await fixture.stop()
    }
}
