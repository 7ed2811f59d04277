import FulcrumHTTP1
import NIOCore

/// The handler of an upstream connection. It reads responses with ``ResponseReader`` and hands
/// their parts to the client connection it serves, and writes what that connection sends;
/// when detached it sits in its ``NodePool`` until reused or closed. After a protocol switch
/// (101) it relays bytes as they are.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    // Strong: a connection may outlive its pool's place in the configuration (reload) and must
    // still be able to leave it. The pool holds the connection only while it is idle.
    let pool: NodePool
    /// The client connection whose exchange uses this connection, or `nil` while pooled.
    var client: ProxyHandler?
    var idleSince: NIODeadline = .now()
    /// Set after a 101 response: bytes go to the client as they are.
    var isTunnel = false
    /// Whether every byte of the current request, as Fulcrum framed it, was handed to the channel.
    private var requestWritten = true
    /// Whether the current request's final response was read to its end.
    private var responseRead = true
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var reader = ResponseReader()
    /// Received bytes not read yet.
    private var unread: ByteBuffer
    private var batch: WriteBatch
    /// What ``unread`` holds when there is nothing to read (see ``ByteBuffer/emptyOfItsOwn()``).
    private let noBytes = ByteBuffer.emptyOfItsOwn()

    init(pool: NodePool) {
        self.pool = pool
        self.unread = noBytes
        self.batch = WriteBatch(empty: noBytes)
    }

    /// Whether the connection is open: set when it becomes active, cleared when it closes (kept
    /// here because asking the channel costs a protocol call on every pool take and release).
    private(set) var isActive = false
    /// Whether the channel takes more writes now: kept from its writability events, which NIO
    /// sends as soon as it changes (even inside a write), instead of asking the channel each time.
    private(set) var isWritable = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isActive = context.channel.isActive
        isWritable = context.channel.isWritable
    }

    func channelActive(context: ChannelHandlerContext) {
        isActive = true
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        isWritable = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard let client else {
            // A response nobody asked for on an idle connection: it cannot be trusted any more.
            context.close(promise: nil)
            return
        }
        if isTunnel { return client.tunnelReceived(bytes) }
        if unread.readableBytes == 0 { unread = bytes } else { unread.writeBuffer(&bytes) }
        // parts go to the client while it stays attached (the end of its response detaches it)
        while self.client === client, !isTunnel {
            let part: MessagePart<ResponseHead>?
            do {
                part = try reader.next(&unread)
            } catch {
                unread = noBytes
                client.upstreamFailed(self, error: error)
                context.close(promise: nil)
                return
            }
            guard let part else { break }
            if case .end = part { responseRead = true }
            client.upstreamReceived(part, from: self)
        }
        let leftover = unread
        unread = noBytes  // lets the last read buffer go
        guard leftover.readableBytes > 0 else { return }
        if isTunnel {
            self.client?.tunnelReceived(leftover)
        } else if self.client == nil {
            // bytes after the end of the response: the connection cannot be trusted any more
            context.close(promise: nil)
        } else {
            unread = leftover  // the rest of a head
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        pool.remove(self)
        if let client, !isTunnel, reader.endsAtClose {
            client.upstreamReceived(.end, from: self)  // a response without framing ends with its connection
        }
        client?.upstreamClosed(self)
        client = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        client?.upstreamFailed(self, error: error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        client?.upstreamWritabilityChanged(isWritable: isWritable)
    }

    // MARK: used by the attached client connection

    /// Prepares for the response to the next request (HEAD responses have no body).
    func expectResponse(toHEAD: Bool) {
        reader.awaitsResponseToHEAD = toHEAD
        requestWritten = false
        responseRead = false
    }

    /// The attached client connection wrote the last bytes of its request.
    func requestEnded() {
        requestWritten = true
    }

    /// Whether the connection may carry another request: it is open, not a tunnel, the whole
    /// request was written, exactly its response was read, and no byte beyond that arrived. A
    /// connection in any doubt would pair the next client's request with another response, or
    /// complete a request someone else began.
    var isReusable: Bool {
        isActive && !isTunnel && requestWritten && responseRead && unread.readableBytes == 0
    }

    func write(_ bytes: ByteBuffer) {
        if let context { batch.write(bytes, to: context) }
    }

    func flush() {
        if let context { batch.flush(context) }
    }

    func pauseReading() {
        if let context { readGate.pause(context) }
    }

    func resumeReading() {
        if let context { readGate.resume(context) }
    }

    /// Whether reads are paused because the client takes no more bytes now.
    var isReadingPaused: Bool { readGate.isPaused }

    func close() {
        context?.close(promise: nil)
    }
}
