import FulcrumHTTP1
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP server that answers every request with its own name, used by `fulcrum demo` so that
/// one command shows requests being spread over several nodes. Not part of the data plane.
public final class DemoBackend: Sendable {
    public let name: String
    private let channel: Channel

    /// Starts the backend on `host:port` (port 0 picks a free one).
    public static func start(name: String, host: String = "127.0.0.1", port: Int = 0, group: EventLoopGroup) async throws -> DemoBackend {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DemoBackendHandler(name: name))
                }
            }
            .bind(host: host, port: port).get()
        return DemoBackend(name: name, channel: channel)
    }

    private init(name: String, channel: Channel) {
        self.name = name
        self.channel = channel
    }

    /// The port the backend listens on.
    public var port: Int { channel.localAddress?.port ?? 0 }

    public func stop() async throws {
        try await channel.close()
    }
}

private final class DemoBackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    private var head: HTTPRequestHead?

    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let body = "\(name) answered \(head.method.rawValue) \(head.uri)\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "X-Backend", value: name)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            self.head = nil
        }
    }
}
