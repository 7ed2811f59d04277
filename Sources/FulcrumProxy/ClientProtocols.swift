import FulcrumCore
import NIOCore
import NIOHTTP2
import NIOTLS

/// Sets up a client connection's pipeline for the protocol it speaks: HTTP/1.1 with one
/// ``ProxyHandler``, or HTTP/2 with a ``ProxyHandler`` behind an ``HTTP2StreamAsHTTP1`` per
/// stream. The protocol comes from ALPN on TLS listeners, from the connection preface on `h2c`
/// listeners, and is HTTP/1.1 otherwise.
enum ClientProtocols {
    /// What a listener's connections are given.
    struct Listening: Sendable {
        var overTLS: Bool
        var redirectToHTTPS: Int?
        /// Whether HTTP/1.1 is offered (on TLS listeners, `http/1.1` in `tls.alpn`).
        var offersHTTP1: Bool
    }

    static func configureHTTP1(_ channel: Channel, loop: LoopContext, listening: Listening) throws {
        ProtocolDeadline.met(channel)
        // the handler reads and writes HTTP/1.1 itself (FulcrumHTTP1): one handler per connection
        // plaintext: nothing between the handler and the socket, which can send files itself
        try channel.pipeline.syncOperations.addHandler(
            ProxyHandler(loop: loop, overTLS: listening.overTLS, redirectToHTTPS: listening.redirectToHTTPS, sendsFileRegions: !listening.overTLS))
    }

    static func configureHTTP2(_ channel: Channel, loop: LoopContext, listening: Listening) throws {
        ProtocolDeadline.met(channel)
        let limits = loop.runtime.config.http2
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderListSize),
            HTTP2Setting(parameter: .headerTableSize, value: limits.headerTableSize),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.streamResetFrameRateLimit.maximumCount = limits.maxResets
        stream.streamResetFrameRateLimit.windowLength = TimeAmount(limits.resetWindow)
        let overTLS = listening.overTLS
        let bound = NIOLoopBound(loop, eventLoop: channel.eventLoop)  // every stream is on its connection's loop
        try channel.pipeline.syncOperations.addHandler(FlushCoalescer())  // before the HTTP/2 handler configureHTTP2Pipeline adds
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: stream
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2StreamAsHTTP1())
                try stream.pipeline.syncOperations.addHandler(ProxyHandler(loop: bound.value, overTLS: overTLS))
            }
        }
        try channel.pipeline.syncOperations.addHandler(
            NIOHTTP2ServerConnectionManagementHandler(
                eventLoop: channel.eventLoop, configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil)))
        try channel.pipeline.syncOperations.addHandler(HTTP2Connection(loop: loop))
    }

    /// After the TLS handshake: HTTP/2 when ALPN chose `h2`, HTTP/1.1 when it chose `http/1.1`
    /// or the client used no ALPN and HTTP/1.1 is offered; closed otherwise.
    static func negotiationHandler(loop: LoopContext, listening: Listening) -> ApplicationProtocolNegotiationHandler {
        let bound = NIOLoopBound(loop, eventLoop: loop.eventLoop)
        return ApplicationProtocolNegotiationHandler { result, channel in
            channel.eventLoop.makeCompletedFuture {
                let loop = bound.value
                switch result {
                case .negotiated("h2"):
                    try configureHTTP2(channel, loop: loop, listening: listening)
                case .negotiated("http/1.1"):
                    try configureHTTP1(channel, loop: loop, listening: listening)
                case .fallback where listening.offersHTTP1:
                    try configureHTTP1(channel, loop: loop, listening: listening)
                default:
                    channel.close(promise: nil)
                }
            }
        }
    }
}

/// On an `h2c` listener: waits for the first bytes of a connection and sets the connection up for
/// HTTP/2 when they are the HTTP/2 connection preface, for HTTP/1.1 otherwise, then hands the
/// bytes on to the handlers it added.
final class HTTP2PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let loop: LoopContext
    private let listening: ClientProtocols.Listening
    private var received = ByteBuffer()

    init(loop: LoopContext, listening: ClientProtocols.Listening) {
        self.loop = loop
        self.listening = listening
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        let compared = min(received.readableBytes, Self.preface.count)
        let isPreface = received.readableBytesView.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        guard !isPreface || compared == Self.preface.count else { return }  // the preface so far: wait for the rest
        do {
            if isPreface {
                try ClientProtocols.configureHTTP2(context.channel, loop: loop, listening: listening)
            } else {
                try ClientProtocols.configureHTTP1(context.channel, loop: loop, listening: listening)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let bytesSoFar = received
        received = ByteBuffer()
        // handed on before the sniffer leaves: a removed handler's context has no next handler
        context.fireChannelRead(wrapInboundOut(bytesSoFar))
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

/// Watches an HTTP/2 client connection for its event loop: its open streams (to close it after
/// `client_idle` without any) and the drain, which sends GOAWAY and closes the connection once its
/// streams have finished (``NIOHTTP2ServerConnectionManagementHandler`` does both on a quiesce
/// event).
final class HTTP2Connection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let loop: LoopContext
    private var context: ChannelHandlerContext?
    private var openStreams = 0
    private(set) var idleSince: NIODeadline? = .now()
    private var quiescing = false

    init(loop: LoopContext) {
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.http2ConnectionOpened(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        loop.http2ConnectionClosed(self)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is NIOHTTP2StreamCreatedEvent:
            openStreams += 1
            idleSince = nil
        case is StreamClosedEvent:
            openStreams -= 1
            if openStreams == 0 { idleSince = .now() }
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// GOAWAY now; the connection closes when its open streams have finished.
    func quiesce() {
        guard !quiescing, let context else { return }
        quiescing = true
        context.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    /// Quiesces the connection when it has had no stream since before `idleBefore`.
    func closeIfIdle(since idleBefore: NIODeadline) {
        if let idleSince, idleSince < idleBefore { quiesce() }
    }

    func closeNow() {
        context?.close(promise: nil)
    }
}

/// Closes a connection whose protocol is not known within `client_head` of its accept: a TLS
/// handshake (and ALPN) or an `h2c` preface that does not complete. Until the protocol is known
/// no request handler, and so no request-head timeout, exists on the connection: without this, a
/// client that opened a TLS connection and sent nothing would hold it, and a place under
/// `max_connections`, for ever.
final class ProtocolDeadline: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let limit: TimeAmount
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// The protocol is known: the deadline is lifted.
    static func met(_ channel: Channel) {
        guard let deadline = try? channel.pipeline.syncOperations.handler(type: ProtocolDeadline.self) else { return }
        deadline.timer?.cancel()
        deadline.timer = nil
    }
}
