import FulcrumCore
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import FulcrumProxy

/// Handlers on NIO's EmbeddedChannel: no sockets, every byte in and out inspected.
@Suite struct HandlerTests {
    static func proxyChannel(_ yaml: String = "") throws -> EmbeddedChannel {
        let text = """
            listen: [{ port: 0 }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }
            routes: [{ name: only, match: { path: /only }, service: s }]
            """ + yaml
        let runtime = try RuntimeConfig(config: FulcrumConfig.parse(text), generation: 1)
        let channel = EmbeddedChannel()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let loop = LoopContext(eventLoop: channel.embeddedEventLoop, runtime: runtime, logs: ProxyLogs(events: logger, access: nil))
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false)
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(loop: loop))
        try channel.connect(to: SocketAddress(ipAddress: "10.0.0.7", port: 5555)).wait()
        return channel
    }

    static func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    @Test func unroutedRequestsGet404AndTheConnectionStaysOpen() throws {
        let channel = try Self.proxyChannel("\nerrors: { 404: { body: \"no route\", content_type: text/plain } }")
        try channel.writeInbound(ByteBuffer(string: "GET /nope HTTP/1.1\r\nHost: a\r\nX-Request-ID: abc\r\n\r\n"))
        let response = try Self.output(channel)
        #expect(response.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(response.contains("Content-Length: 8\r\n"))
        #expect(response.contains("Content-Type: text/plain\r\n"))
        #expect(response.contains("X-Request-ID: abc\r\n"))
        #expect(response.hasSuffix("\r\n\r\nno route"))
        #expect(channel.isActive)
        // a second request on the same connection is answered as well
        try channel.writeInbound(ByteBuffer(string: "HEAD /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
        let second = try Self.output(channel)
        #expect(second.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(second.contains("Connection: close\r\n"))
        #expect(second.hasSuffix("\r\n\r\n"), "no body for HEAD")
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func malformedRequestsGet400AndTheConnectionCloses() throws {
        let channel = try Self.proxyChannel()
        // the parser error is handled by the proxy handler, not passed on
        try channel.writeInbound(ByteBuffer(string: "GET /only HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"))
        channel.embeddedEventLoop.run()
        let response = try Self.output(channel)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(response.contains("Connection: close\r\n"))
        #expect(!channel.isActive)
    }

    @Test func upstreamHeadRemovesHopByHopAndAddsForwardingHeaders() {
        let head = HTTPRequestHead(version: .http1_0, method: .GET, uri: "/a?b", headers: [
            "Host": "shop.example.com", "Connection": "close, X-Drop", "X-Drop": "1", "TE": "trailers",
            "X-Forwarded-For": "1.1.1.1", "x-forwarded-for": "2.2.2.2", "X-Real-IP": "spoofed", "Accept": "*/*",
        ])
        let rewritten = HeaderRewriter.upstreamRequest(
            head, clientIP: "10.0.0.7", requestIDHeader: "X-Request-ID", requestID: "id1", generatedID: true, isUpgrade: false)
        #expect(rewritten.version == .http1_1)
        #expect(rewritten.uri == "/a?b")
        let names = rewritten.headers.map { $0.name.lowercased() }
        #expect(!names.contains("connection") && !names.contains("x-drop") && !names.contains("te"))
        #expect(rewritten.headers["X-Forwarded-For"] == ["1.1.1.1, 2.2.2.2, 10.0.0.7"])
        #expect(rewritten.headers["X-Real-IP"] == ["10.0.0.7"])
        #expect(rewritten.headers["X-Forwarded-Host"] == ["shop.example.com"])
        #expect(rewritten.headers["X-Forwarded-Proto"] == ["http"])
        #expect(rewritten.headers["X-Request-ID"] == ["id1"])
        #expect(rewritten.headers["Accept"] == ["*/*"])
    }

    @Test func upgradeRequestsKeepUpgradeHeaders() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: [
            "Host": "a", "Connection": "Upgrade", "Upgrade": "websocket",
        ])
        let rewritten = HeaderRewriter.upstreamRequest(
            head, clientIP: "::1", requestIDHeader: "X-Request-ID", requestID: "x", generatedID: false, isUpgrade: true)
        #expect(rewritten.headers["Upgrade"] == ["websocket"])
        #expect(rewritten.headers["Connection"] == ["upgrade"])
        #expect(rewritten.headers["X-Request-ID"].isEmpty)
    }

    @Test func responseHeadersAreOnlyCopiedWhenSomethingChanges() {
        let clean = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "3", "X-Request-ID": "r"])
        let kept = HeaderRewriter.clientResponse(clean, requestIDHeader: "X-Request-ID", requestID: "r", close: false)
        #expect(kept.headers == clean.headers)
        let dirty = HTTPResponseHead(version: .http1_0, status: .ok, headers: ["Keep-Alive": "timeout=5", "Connection": "keep-alive", "ETag": "x"])
        let cleaned = HeaderRewriter.clientResponse(dirty, requestIDHeader: "X-Request-ID", requestID: "r", close: true)
        #expect(cleaned.version == .http1_1)
        #expect(cleaned.headers["Keep-Alive"].isEmpty)
        #expect(cleaned.headers["ETag"] == ["x"])
        #expect(cleaned.headers["Connection"] == ["close"])
        #expect(cleaned.headers["X-Request-ID"] == ["r"])
    }

    @Test func tunnelRelaysBytesAndHoldsReadsWhileThePartnerIsFull() throws {
        let client = EmbeddedChannel()
        let upstream = EmbeddedChannel()
        let clientSide = TunnelHandler()
        let upstreamSide = TunnelHandler()
        TunnelHandler.pair(clientSide, upstreamSide)
        let reads = ReadCounter()
        try client.pipeline.syncOperations.addHandlers(reads, clientSide)
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)

        try client.writeInbound(ByteBuffer(string: "ping"))
        client.pipeline.fireChannelReadComplete()
        #expect(try upstream.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "ping"))
        try upstream.writeInbound(ByteBuffer(string: "pong"))
        #expect(try client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "pong"))

        client.read()
        #expect(reads.count == 1)
        upstream.isWritable = false
        upstream.pipeline.fireChannelWritabilityChanged()
        client.read()
        #expect(reads.count == 1, "reads from the client are held while the upstream cannot write")
        upstream.isWritable = true
        upstream.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == 2, "the held read is released")

        try upstream.close().wait()
        #expect(!client.isActive, "closing one side closes the other")
    }
}

/// Counts the `read()` calls that reach it.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var count = 0
    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}
