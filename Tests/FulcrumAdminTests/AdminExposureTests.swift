import Foundation
import FulcrumStore
import NIOCore
import NIOPosix
import Testing
import RealSockets

/// What a client without a token can make the admin listener do: little, and cheaply.
@Suite(.realSockets) struct AdminExposureTests {
    /// Before, a token-less 64 MiB chunked PUT was read to its end before the 401.
    @Test func aRequestWithoutATokenIsRefusedBeforeItsBodyIsRead() async throws {
        let fixture = try await AdminFixture()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("admin-body-\(UUID().uuidString)")
        try Data(repeating: 0x7B, count: 64 << 20).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-X", "PUT", "-H", "Transfer-Encoding: chunked", "-H", "Expect:",
            "--data-binary", "@\(file.path)", "http://127.0.0.1:\(fixture.admin.address.port ?? 0)/api/v1/config",
        ]
        let out = Pipe()
        curl.standardOutput = out
        let started = ContinuousClock.now
        try curl.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
        curl.waitUntilExit()
        #expect(printed.first == "401", "\(printed)")
        let uploaded = printed.count > 1 ? Int(Double(printed[1]) ?? .infinity) : .max
        #expect(uploaded < 32 << 20, "\(uploaded) bytes of the body were taken")
        #expect(ContinuousClock.now - started < .seconds(5))
        try await fixture.stop()
    }

    /// Before, a token-less client learnt from 405 which methods a path has.
    @Test func authenticationComesBeforeMethodAndPathAnswers() async throws {
        let fixture = try await AdminFixture()
        #expect(try await fixture.call("DELETE", "/api/v1/config", as: .none).status == 401)
        #expect(try await fixture.call("GET", "/api/v1/no-such-thing", as: .none).status == 401)
        #expect(try await fixture.call("DELETE", "/api/v1/config", ifMatch: "*").status == 405, "with a token, the method is judged")
        #expect(try await fixture.call("GET", "/api/v1/health", as: .none).status == 200, "open endpoints stay open")
        for path in ["/console/", "/console/console.js", "/favicon.ico"] {
            #expect(try await fixture.call("GET", path, as: .none).status == 200, "\(path): the console's files need no token")
        }
        try await fixture.stop()
    }

    /// Before, 2,000 wrong-token requests added 2,000 audit entries, and 200 token-less requests
    /// with a 60,000-character path added 21 MiB: the target was stored whole.
    @Test func failedAuthenticationsAreAggregatedThrottledAndClipped() async throws {
        let fixture = try await AdminFixture()
        var statuses: [Int] = []
        for index in 0..<30 {
            let reply = try await fixture.call("GET", "/api/v1/config/" + String(repeating: "x", count: index == 0 ? 60_000 : 1), as: .raw("Bearer fulcrum_guess_\(index)"))
            statuses.append(reply.status)
            if reply.status == 429 { #expect(Int(reply.headers["retry-after"] ?? "") ?? 0 > 0) }
        }
        #expect(statuses.prefix(10).allSatisfy { $0 == 401 } && statuses.dropFirst(10).allSatisfy { $0 == 429 }, "\(statuses)")
        #expect(try await fixture.call("GET", "/api/v1/config").status == 429, "the address is refused, even with a valid token, until the window ends")
        let entries = try await fixture.store.auditEntries(AuditQuery()).filter { $0.record.result == "401 unauthorized" }
        #expect(entries.count == 2, "the first failure, then the tenth with the count of those between")
        #expect(entries.contains { $0.record.detail.contains("and 8 more failed authentications") })
        #expect(entries.allSatisfy { $0.record.operation.utf8.count < 400 && $0.record.target.utf8.count < 400 })
        try await fixture.stop()
    }

    /// Before, the admin listener had no cap: 20,000 idle connections used every descriptor.
    @Test func connectionsBeyondTheCapAreClosedAtOnce() async throws {
        let fixture = try await AdminFixture()
        let port = fixture.admin.address.port ?? 0
        let extra = 8
        let closedByServer = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<(64 + extra) {
                group.addTask {
                    (try? await AdminSocket.closedByServer(port: port, within: .seconds(2))) ?? false
                }
            }
            var count = 0
            for await closed in group where closed { count += 1 }
            return count
        }
        #expect(closedByServer == extra, "\(closedByServer) of \(64 + extra) closed by the server")
        #expect(try await fixture.call("GET", "/api/v1/health", as: .none).status == 200, "served again once they are gone")
        try await fixture.stop()
    }
}

/// A connection that sends nothing: whether the server closes it within `within`.
enum AdminSocket {
    final class Watcher: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let closed: EventLoopPromise<Bool>
        init(closed: EventLoopPromise<Bool>) { self.closed = closed }
        func channelInactive(context: ChannelHandlerContext) { closed.succeed(true) }
    }

    static func closedByServer(port: Int, within: TimeAmount) async throws -> Bool {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let closed = loop.makePromise(of: Bool.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Watcher(closed: closed)) } }
            .connect(host: "127.0.0.1", port: port).get()
        loop.scheduleTask(in: within) { closed.succeed(false) }
        let result = try await closed.futureResult.get()
        try? await channel.close()
        return result
    }
}
