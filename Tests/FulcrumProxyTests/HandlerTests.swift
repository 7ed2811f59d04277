import FulcrumCore
import FulcrumHTTP1
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import FulcrumProxy

/// Handlers on NIO's EmbeddedChannel: no sockets, every byte in and out inspected.
@Suite struct HandlerTests {
    static func proxyChannel(_ yaml: String = "") throws -> EmbeddedChannel {
        try proxyConnection(yaml).channel
    }

    /// A client connection to the proxy, and its event loop's context.
    static func proxyConnection(_ yaml: String = "") throws -> (channel: EmbeddedChannel, loop: LoopContext) {
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
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(loop: loop))
        try channel.connect(to: SocketAddress(ipAddress: "10.0.0.7", port: 5555)).wait()
        return (channel, loop)
    }

    /// A client connection to the proxy, and an upstream connection idle in the pool of the
    /// route's node, on the same event loop.
    static func proxyConnectionWithPooledUpstream() throws -> (client: EmbeddedChannel, upstream: EmbeddedChannel, pool: NodePool) {
        let (client, loop) = try proxyConnection()
        let pool = loop.pools[0][0]
        let upstream = EmbeddedChannel(loop: client.embeddedEventLoop)
        try upstream.pipeline.syncOperations.addHandler(UpstreamHandler(pool: pool))
        try upstream.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        pool.release(try upstream.pipeline.syncOperations.handler(type: UpstreamHandler.self))
        return (client, upstream, pool)
    }

    /// A slow client pauses the node's connection; when the response's end came in the same read,
    /// the connection goes back to the pool with its reads paused. It must read again there, or
    /// the next exchange on it would never see its response.
    @Test func aConnectionPausedForASlowClientReadsAgainInThePool() throws {
        let (client, upstream, pool) = try Self.proxyConnectionWithPooledUpstream()

        try client.writeInbound(ByteBuffer(string: "GET /only HTTP/1.1\r\nHost: a\r\n\r\n"))
        client.embeddedEventLoop.run()  // the end of the loop's round, when queued writes are flushed
        var sent = try #require(try upstream.readOutbound(as: ByteBuffer.self), "the request went to the pooled connection")
        #expect(sent.readString(length: 16) == "GET /only HTTP/1")

        client.isWritable = false
        client.pipeline.fireChannelWritabilityChanged()
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
        #expect(pool.takeIdle() != nil, "the connection is back in the pool")
        #expect(Self.autoRead(upstream), "the pooled connection reads")
    }

    /// A node that answers before the whole request body was sent leaves the rest of the body
    /// to be read as the next request: such a connection must close, not return to the pool.
    @Test func aConnectionWhoseRequestWasNotSentToItsEndIsNotPooled() throws {
        let (client, upstream, pool) = try Self.proxyConnectionWithPooledUpstream()
        try client.writeInbound(ByteBuffer(string: "POST /only HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello"))
        client.embeddedEventLoop.run()
        #expect(try Self.output(upstream).hasSuffix("\r\n\r\nhello"))
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno"))
        client.embeddedEventLoop.run()
        #expect(pool.takeIdle() == nil, "half a request body went out: the connection is not reused")
        #expect(!upstream.isActive)
    }

    /// Bytes after the end of a response belong to no request Fulcrum sent.
    @Test func aConnectionWithBytesBeyondItsResponseIsNotPooled() throws {
        let (client, upstream, pool) = try Self.proxyConnectionWithPooledUpstream()
        try client.writeInbound(ByteBuffer(string: "GET /only HTTP/1.1\r\nHost: a\r\n\r\n"))
        client.embeddedEventLoop.run()
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"))
        client.embeddedEventLoop.run()
        #expect(pool.takeIdle() == nil)
        #expect(!upstream.isActive)
        #expect(try Self.output(client).hasSuffix("\r\n\r\nok"), "the client still gets its response")
    }

    /// Writes made while the loop handles a round of events leave when the round ends, in both
    /// directions: the request to the node, and the response to the client.
    @Test func writesAreFlushedWhenTheLoopsRoundEnds() throws {
        let (client, upstream, _) = try Self.proxyConnectionWithPooledUpstream()

        try client.writeInbound(ByteBuffer(string: "GET /only HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try upstream.readOutbound(as: ByteBuffer.self) == nil, "the request waits for the end of the round")
        client.embeddedEventLoop.run()
        #expect(try Self.output(upstream).hasPrefix("GET /only HTTP/1.1\r\n"))

        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
        #expect(try client.readOutbound(as: ByteBuffer.self) == nil, "the response waits for the end of the round")
        client.embeddedEventLoop.run()
        let response = try Self.output(client)
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n") && response.hasSuffix("\r\n\r\nhello"), "\(response)")
    }

    /// The `autoRead` option last set on an embedded channel (its `getOption` always says true).
    static func autoRead(_ channel: EmbeddedChannel) -> Bool {
        channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }.map { $0.value as? Bool == true } ?? true
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

    static func requestHead(_ text: String) throws -> RequestHead {
        try RequestHead(parsing: ByteBuffer(string: text))
    }

    static func upstreamText(_ head: RequestHead, clientIP: String = "10.0.0.7", requestID: RequestID = .generated(0xa1)) throws -> String {
        var out = ByteBuffer()
        let request = try HeadRoutingRequest(head: head, clientIP: clientIP[...], encodedSlashes: .refuse)
        HeaderRewriter.writeUpstreamRequest(request, clientIP: clientIP, overTLS: false, requestIDHeader: "X-Request-ID", requestID: requestID, to: &out)
        return String(buffer: out)
    }

    /// Without the protection, `Connection: Content-Length` removed the framing field while its
    /// body was forwarded, and the node read that body as a second request nobody routed.
    @Test(arguments: [
        "POST /a HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nConnection: close, content-length\r\nContent-Length: 5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: TRANSFER-ENCODING, host\r\nTransfer-Encoding: chunked\r\n\r\n",
    ])
    func connectionCannotRemoveTheFieldsThatFrameOrRouteARequest(_ text: String) throws {
        let head = try Self.requestHead(text)
        let upstream = try Self.upstreamText(head, requestID: .received("id"))
        let sent = try Self.requestHead(upstream)
        #expect(sent.framing == head.framing, "\(upstream)")
        #expect(sent.header("host") == "a")
        #expect(!upstream.lowercased().contains("connection: "), "the client's Connection field is hop-by-hop")
        // other listed names are still removed
        let listed = try Self.upstreamText(Self.requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n"))
        #expect(!listed.contains("X-Secret"))
    }

    @Test func aNodeCannotRemoveTheFramingOfItsResponseThroughConnection() throws {
        let text = try Self.clientText("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 3\r\n\r\n", close: false)
        #expect(try ResponseHead(parsing: ByteBuffer(string: text), toHEAD: false).framing == .length(3), "\(text)")
        let chunked = try Self.clientText("HTTP/1.1 200 OK\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n", close: false)
        #expect(try ResponseHead(parsing: ByteBuffer(string: chunked), toHEAD: false).framing == .chunked, "\(chunked)")
    }

    /// RFC 9112 §3.2.2: the node must act on the authority Fulcrum routed on, not on the target.
    @Test func anAbsoluteFormTargetReachesTheNodeInOriginFormWithItsAuthorityAsHost() throws {
        let head = try Self.requestHead("GET http://internal.example:8080/hostcheck?x=1 HTTP/1.1\r\nHost: public.example\r\n\r\n")
        let request = try HeadRoutingRequest(head: head, clientIP: "1.2.3.4", encodedSlashes: .refuse)
        #expect(request.host == "internal.example")
        let upstream = try Self.upstreamText(head)
        #expect(upstream.hasPrefix("GET /hostcheck?x=1 HTTP/1.1\r\nHost: internal.example:8080\r\n"), "\(upstream)")
        #expect(!upstream.contains("public.example"))
        #expect(upstream.contains("X-Forwarded-Host: internal.example:8080\r\n"))
    }

    @Test func theNodeIsSentTheNormalisedPathThatWasRouted() throws {
        let head = try Self.requestHead("GET /public/%2e%2e/admin/./x?a=%2e%2e HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try Self.upstreamText(head).hasPrefix("GET /admin/x?a=%2e%2e HTTP/1.1\r\nHost: a\r\n"))
        let normal = try Self.requestHead("GET /api/v1/users?x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try Self.upstreamText(normal).hasPrefix("GET /api/v1/users?x HTTP/1.1\r\n"))
    }

    @Test func upstreamHeadRemovesHopByHopAndAddsForwardingHeaders() throws {
        let head = try Self.requestHead(
            "GET /a?b HTTP/1.0\r\nHost: shop.example.com\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\nTE: trailers\r\n"
                + "X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\nX-Real-IP: spoofed\r\nAccept:  */* \r\n\r\n")
        // HTTP/1.0 stays HTTP/1.0 (its response must not be chunked), and asks to keep the connection
        #expect(try Self.upstreamText(head) == """
            GET /a?b HTTP/1.0\r
            Connection: keep-alive\r
            Host: shop.example.com\r
            Accept:  */*\r
            X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.7\r
            X-Forwarded-Proto: http\r
            X-Forwarded-Host: shop.example.com\r
            X-Real-IP: 10.0.0.7\r
            X-Request-ID: 00000000000000a1\r
            \r

            """)
        // without a Host, which HTTP/1.0 allows and HTTP/1.1 does not
        let hostless = try Self.requestHead("GET / HTTP/1.0\r\n\r\n")
        #expect(try Self.upstreamText(hostless).hasPrefix("GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.7\r\n"))
        let current = try Self.requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(try Self.upstreamText(current).hasPrefix("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.7\r\n"))
    }

    @Test func upgradeRequestsKeepUpgradeHeaders() throws {
        let head = try Self.requestHead("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-ID: x\r\n\r\n")
        #expect(head.isUpgrade)
        let text = try Self.upstreamText(head, clientIP: "::1", requestID: .received("x"))
        #expect(text.hasPrefix("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nX-Request-ID: x\r\nConnection: upgrade\r\n"))
        #expect(text.split(separator: "\r\n").filter { $0.hasPrefix("X-Request-ID") } == ["X-Request-ID: x"])
        // without Connection: upgrade, Upgrade is just a hop-by-hop header
        let plain = try Self.requestHead("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
        #expect(try !plain.isUpgrade && !Self.upstreamText(plain).contains("Upgrade"))
    }

    static func clientText(_ response: String, close: Bool, clientMinorVersion: Int = 1, setCookie: String? = nil) throws -> String {
        let head = try ResponseHead(parsing: ByteBuffer(string: response), toHEAD: false)
        var out = ByteBuffer()
        HeaderRewriter.writeClientResponse(
            head, requestIDHeader: "X-Request-ID", requestID: .received("r"), setCookie: setCookie, close: close,
            clientMinorVersion: clientMinorVersion, to: &out)
        return String(buffer: out)
    }

    @Test func responseHeadsLoseHopByHopFieldsAndGainTheRequestID() throws {
        #expect(try Self.clientText("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nx-request-id: mine\r\n\r\n", close: false)
            == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nx-request-id: mine\r\n\r\n")
        let cleaned = try Self.clientText(
            "HTTP/1.0 200 Fine\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nETag: x\r\n\r\n", close: true,
            setCookie: "canary=b")
        #expect(cleaned == "HTTP/1.1 200 Fine\r\nETag: x\r\nX-Request-ID: r\r\nSet-Cookie: canary=b\r\nConnection: close\r\n\r\n")
        // an HTTP/1.0 client that keeps the connection is told so
        #expect(try Self.clientText("HTTP/1.1 204 No Content\r\n\r\n", close: false, clientMinorVersion: 0)
            == "HTTP/1.1 204 No Content\r\nX-Request-ID: r\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func pipelinedRequestsWaitForTheCurrentExchange() throws {
        let channel = try Self.proxyChannel()
        // two unrouted requests in one read: both answered, in order
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nX-Request-ID: two\r\n\r\nGET /c HT"))
        let response = try Self.output(channel)
        #expect(response.components(separatedBy: "HTTP/1.1 404").count == 3)
        #expect(response.contains("X-Request-ID: two"))
        try channel.writeInbound(ByteBuffer(string: "TP/1.1\r\nHost: a\r\nX-Request-ID: three\r\n\r\n"))
        #expect(try Self.output(channel).contains("X-Request-ID: three"), "a head split across reads is read when complete")
    }

    @Test func aBadBodyAfterALocalAnswerOnlyClosesTheConnection() throws {
        let channel = try Self.proxyChannel()
        // unrouted: 404 at once; the body that follows has invalid chunk framing
        try channel.writeInbound(ByteBuffer(string: "POST /nope HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
        channel.embeddedEventLoop.run()
        let response = try Self.output(channel)
        #expect(response.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(!response.contains("400"), "one request, one answer: \(response)")
        #expect(!channel.isActive)
    }

    @Test(arguments: [
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505 HTTP Version Not Supported"),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501 Not Implemented"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "x", count: 70_000))\r\n\r\n", "431 Request Header Fields Too Large"),
        ("GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),
        ("GET / HTTP/1.1\nHost: a\n\n", "400 Bad Request"),
        // HTTP/0.9 (a request line alone): answered at once, not waited on for an empty line
        ("GET /\r\n", "400 Bad Request"),
        ("GET /\r\nHost", "400 Bad Request"),
        ("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-A: 1\r\n", count: 300) + "\r\n", "431 Request Header Fields Too Large"),
        // paths nodes read differently: never routed
        ("GET /public/..%2fadmin HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET /public/..%5Cadmin HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET /public\\..\\admin HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET /public/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
    ])
    func refusedRequestsGetTheirStatusAndClose(_ request: String, _ status: String) throws {
        let channel = try Self.proxyChannel()
        try channel.writeInbound(ByteBuffer(string: request))
        channel.embeddedEventLoop.run()
        let response = try Self.output(channel)
        #expect(response.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(response)")
        #expect(response.contains("Connection: close\r\n"))
        #expect(!channel.isActive)
    }
}
