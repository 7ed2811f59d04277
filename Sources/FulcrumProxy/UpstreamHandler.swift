import NIOCore
import NIOHTTP1

/// The last handler of an upstream connection's pipeline. It hands response parts to the client
/// exchange it is currently attached to and takes request parts from it; when detached it sits in
/// its ``NodePool`` until reused or closed.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    // Strong: a connection may outlive its pool's place in the configuration (reload) and must
    // still be able to leave it. The pool holds the connection only while it is idle.
    let pool: NodePool
    /// The client exchange using this connection, or `nil` while pooled.
    var exchange: ProxyHandler?
    var idleSince: NIODeadline = .now()
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()

    init(pool: NodePool) {
        self.pool = pool
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }
    var channel: Channel? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else {
            // A response nobody asked for on an idle connection: it cannot be trusted any more.
            context.close(promise: nil)
            return
        }
        exchange.upstreamReceived(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool.remove(self)
        exchange?.upstreamClosed(self)
        exchange = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        exchange?.upstreamFailed(self, error: error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func read(context: ChannelHandlerContext) {
        readGate.read(context)
    }

    // MARK: used by the attached exchange

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func pauseReading() { readGate.pause() }

    func resumeReading() {
        if let context { readGate.resume(context) }
    }

    func close() {
        context?.close(promise: nil)
    }
}
