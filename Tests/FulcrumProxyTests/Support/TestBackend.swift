import FulcrumHTTP1
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A real HTTP server on 127.0.0.1 whose behaviour the path chooses:
/// `/slow/MS` answers after MS milliseconds (`/slowon/NAME/MS`: only the backend NAME), `/status/CODE`
/// answers CODE (`/failon/NAME`: 500 from the backend NAME only), `/upload` counts the
/// body bytes it receives, `/version` the HTTP version of the request it saw, `/stall` stops reading at its head and never answers (`/stall/MS`:
/// reads again after MS milliseconds), `/download/BYTES`
/// streams BYTES bytes (counted in ``downloadBytesSent``), `/halt/BYTES` announces twice BYTES
/// bytes, sends BYTES and then nothing more, `/ws` accepts a WebSocket and
/// echoes text frames, `Expect: 100-continue` gets a 100 first; anything else answers with the
/// backend's name and the request headers it saw (one `name: value` per line).
final class TestBackend: Sendable {
    let name: String
    private let channel: Channel

    static func start(_ name: String, port: Int = 0) async throws -> TestBackend {
        let counter = NIOLockedValueBox(0)
        let upgrader = NIOWebSocketServerUpgrader(
            shouldUpgrade: { channel, head in channel.eventLoop.makeSucceededFuture(head.uri == "/ws" ? HTTPHeaders() : nil) },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    sync.removeHandler(try sync.handler(type: TestBackendHandler.self), promise: nil)
                    try sync.addHandler(WebSocketEchoHandler())
                }
            })
        let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let accepted = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                children.withLockedValue { $0[id] = channel }
                accepted.withLockedValue { $0 += 1 }
                channel.closeFuture.whenComplete { _ in children.withLockedValue { $0[id] = nil } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(TestBackendHandler(name: name, counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestBackend(name: name, channel: channel, counter: counter, children: children, accepted: accepted)
    }

    private init(
        name: String, channel: Channel, counter: NIOLockedValueBox<Int>, children: NIOLockedValueBox<[ObjectIdentifier: Channel]>,
        accepted: NIOLockedValueBox<Int>
    ) {
        self.name = name
        self.channel = channel
        self.counterBox = counter
        self.children = children
        self.acceptedBox = accepted
    }

    /// The connections open now (WebSocket ones included), closed by ``stop()``.
    private let children: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    private let acceptedBox: NIOLockedValueBox<Int>

    private let counterBox: NIOLockedValueBox<Int>

    var port: Int { channel.localAddress!.port! }

    /// Connections currently open to this backend.
    var connections: Int { children.withLockedValue { $0.count } }

    /// Connections this backend has accepted so far.
    var accepted: Int { acceptedBox.withLockedValue { $0 } }

    /// Requests this backend has received.
    var requests: Int { counterBox.withLockedValue { $0 } }

    /// Download body bytes written to the socket per backend name.
    static let downloadBytesSent = NIOLockedValueBox<[String: Int]>([:])

    /// Download body bytes this backend has written to its connections so far.
    var downloadBytesSent: Int { Self.downloadBytesSent.withLockedValue { $0[name, default: 0] } }

    /// Stops like a killed process: the listener and every accepted connection close.
    func stop() async {
        try? await channel.close()
        for child in children.withLockedValue({ Array($0.values) }) { try? await child.close() }
    }
}

private final class TestBackendHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    let counter: NIOLockedValueBox<Int>
    private var head: HTTPRequestHead?
    private var received = 0

    init(name: String, counter: NIOLockedValueBox<Int>) {
        self.name = name
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            received = 0
            counter.withLockedValue { $0 += 1 }
            if head.uri.hasPrefix("/stall") {  // reads nothing more: the request body backs up towards the client
                context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
                if let resume = head.uri.split(separator: "/").dropFirst().first.flatMap({ Int64($0) }) {
                    let channel = context.channel
                    context.eventLoop.scheduleTask(in: .milliseconds(resume)) { channel.setOption(.autoRead, value: true).whenComplete { _ in } }
                }
                return
            }
            if head.uri.hasPrefix("/early") {  // answers at once and reads no more of the body
                send(context, .ok, "\(name) early\n")
                self.head = nil
                context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
                return
            }
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
        case .body(let body):
            received += body.readableBytes
        case .end:
            guard let head else { return }
            respond(context, head)
            self.head = nil
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "?")[0].split(separator: "/")
        switch parts.first {
        case "slow":
            let delay = Int64(parts.dropFirst().first.flatMap { Int64($0) } ?? 100)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
                let (handler, context) = loopBound.value
                handler.send(context, .ok, "\(handler.name) slow\n")
            }
        case "slowon":  // /slowon/NAME/MS: only the backend called NAME is slow
            let delay = parts.count > 2 && parts[1] == Substring(name) ? Int64(parts[2]) ?? 100 : 0
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
                let (handler, context) = loopBound.value
                handler.send(context, .ok, "\(handler.name)\n")
            }
        case "failon":  // /failon/NAME: only the backend called NAME answers 500, at once
            send(context, parts.count > 1 && parts[1] == Substring(name) ? .internalServerError : .ok, "\(name)\n")
        case "status":
            let code = parts.dropFirst().first.flatMap { Int($0) } ?? 500
            send(context, HTTPResponseStatus(statusCode: code), "\(name) status \(code)\n")
        case "upload":
            send(context, .ok, "\(name) received \(received)\n")
        case "version":
            send(context, .ok, "\(name) saw HTTP/\(head.version.major).\(head.version.minor)\n")
        case "halt":  // half of the announced body, then silence with the connection open
            let sent = parts.dropFirst().first.flatMap { Int($0) } ?? 0
            let headers = HTTPHeaders([("X-Backend", name), ("Content-Length", String(2 * sent))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let body = context.channel.allocator.buffer(repeating: UInt8(ascii: "h"), count: sent)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case "download":
            let total = parts.dropFirst().first.flatMap { Int($0) } ?? 0
            var headers = HTTPHeaders([("X-Backend", name), ("Content-Length", String(total))])
            headers.add(name: "Content-Type", value: "application/octet-stream")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            Downloader(name: name, total: total, context: context).next()
        default:
            var lines = "\(name)\n"
            for (field, value) in head.headers { lines += "\(field.lowercased()): \(value)\n" }
            lines += "request target \(head.uri)\n"
            send(context, .ok, lines)
        }
    }

    fileprivate func send(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String) {
        let headers = HTTPHeaders([("X-Backend", name), ("Content-Length", String(body.utf8.count)), ("Content-Type", "text/plain")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if head?.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// Streams a response body in 64 KiB pieces, waiting for each write before the next, so the
/// backend never holds more than one piece.
private struct Downloader {
    let name: String
    let total: Int
    let context: ChannelHandlerContext

    func next(sent: Int = 0) {
        if sent >= total {
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            return
        }
        let size = min(65_536, total - sent)
        let buffer = context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: size)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Continue from a fresh stack frame: writes that complete at once would otherwise recurse,
        // and every frame would keep its piece alive.
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer)))).assumeIsolated().whenSuccess {
            TestBackend.downloadBytesSent.withLockedValue { $0[loopBound.value.name, default: 0] += size }
            loopBound.eventLoop.execute { loopBound.value.next(sent: sent + size) }
        }
    }
}

/// Echoes WebSocket text frames; answers close with close.
private final class WebSocketEchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var payload = frame.unmaskedData
            let text = payload.readString(length: payload.readableBytes) ?? ""
            let reply = context.channel.allocator.buffer(string: "echo: \(text)")
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: reply)), promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer())))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }
}
