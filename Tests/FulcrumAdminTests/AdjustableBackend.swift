import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP server on 127.0.0.1 that answers every request with its name, after a delay and with a
/// status that the test can change while it runs (a node that starts to slow down or to fail).
final class AdjustableBackend: Sendable {
    let name: String
    private let channel: Channel
    private let delay: NIOLockedValueBox<Int64>
    private let status: NIOLockedValueBox<HTTPResponseStatus>

    var port: Int { channel.localAddress?.port ?? 0 }

    /// The delay, in milliseconds, of answers to requests that arrive from now on.
    var delayMilliseconds: Int64 {
        get { delay.withLockedValue { $0 } }
        set { delay.withLockedValue { $0 = newValue } }
    }

    /// The status of answers to requests that arrive from now on.
    var responseStatus: HTTPResponseStatus {
        get { status.withLockedValue { $0 } }
        set { status.withLockedValue { $0 = newValue } }
    }

    static func start(name: String) async throws -> AdjustableBackend {
        let delay = NIOLockedValueBox<Int64>(0)
        let status = NIOLockedValueBox<HTTPResponseStatus>(.ok)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(name: name, delay: delay, status: status))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return AdjustableBackend(name: name, channel: channel, delay: delay, status: status)
    }

    private init(name: String, channel: Channel, delay: NIOLockedValueBox<Int64>, status: NIOLockedValueBox<HTTPResponseStatus>) {
        self.name = name
        self.channel = channel
        self.delay = delay
        self.status = status
    }

    func stop() async throws { try await channel.close() }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let name: String
        let delay: NIOLockedValueBox<Int64>
        let status: NIOLockedValueBox<HTTPResponseStatus>

        init(name: String, delay: NIOLockedValueBox<Int64>, status: NIOLockedValueBox<HTTPResponseStatus>) {
            self.name = name
            self.delay = delay
            self.status = status
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let status = status.withLockedValue { $0 }
            context.eventLoop.scheduleTask(in: .milliseconds(delay.withLockedValue { $0 })) {
                let (handler, context) = bound.value
                let body = "\(handler.name)\n"
                let headers = HTTPHeaders([("Content-Length", String(body.utf8.count)), ("X-Backend", handler.name)])
                context.write(handler.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
