import NIOCore
import NIOHTTP1
import NIOPosix

/// A one-line HTTP backend (`X-Backend: NAME`) and a one-shot client, for driving the binary.
final class LineBackend: Sendable {
    let name: String
    private let channel: Channel

    var port: Int { channel.localAddress!.port! }

    static func start(name: String) async throws -> LineBackend {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(name: name))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LineBackend(name: name, channel: channel)
    }

    private init(name: String, channel: Channel) {
        self.name = name
        self.channel = channel
    }

    func stop() async { try? await channel.close() }

    /// GET / through a new connection; returns the body, retrying while the port is not open yet.
    static func get(port: Int, retries: Int = 0) async throws -> String {
        var attempt = 0
        while true {
            do {
                let body = NIOLockedBody()
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(BodyReader(body: body))
                        }
                    }
                    .connect(host: "127.0.0.1", port: port).get()
                try await channel.writeAndFlush(HTTPClientRequestPart.head(
                    HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a", "Connection": "close"])))
                try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
                try await channel.closeFuture.get()
                return body.text
            } catch {
                attempt += 1
                if attempt > retries { throw error }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}

final class NIOLockedBody: @unchecked Sendable {
    private var value = ""
    private let lock = NIOLock()
    var text: String { lock.withLock { value } }
    func append(_ more: String) { lock.withLock { value += more } }
}

import NIOConcurrencyHelpers

private final class BodyReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let body: NIOLockedBody
    init(body: NIOLockedBody) { self.body = body }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .body(var buffer) = unwrapInboundIn(data) { body.append(buffer.readString(length: buffer.readableBytes) ?? "") }
        if case .end = unwrapInboundIn(data) { context.close(promise: nil) }
    }
}

private final class Responder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let name: String
    init(name: String) { self.name = name }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let headers = HTTPHeaders([("Content-Length", String(name.utf8.count)), ("X-Backend", name)])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: name)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
