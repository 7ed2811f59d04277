import FulcrumHTTP1
import NIOCore

/// What a handler writes to its channel between two flushes, gathered so that a head Fulcrum
/// made and a small body part that follows it leave as one buffer: one write through the pipeline
/// and one `write` system call instead of two buffers and a `writev`. Flushes with nothing
/// written are not passed on (an empty flush still costs a trip through the pipeline).
struct WriteBatch {
    /// Body parts are copied behind the head they follow while the result stays within this size.
    static let coalescedLimit = 4096

    /// A head Fulcrum made, still open for small parts to be appended.
    private var open: ByteBuffer?
    private var hasUnflushedWrites = false

    /// The buffer of the last head, written into again by ``writeHead(to:_:)`` once the channel
    /// has let go of it: a connection does not allocate a buffer per response.
    private var lastHead: ByteBuffer
    /// What ``lastHead`` holds while its buffer is in use (see ``ByteBuffer/emptyOfItsOwn()``).
    private let empty: ByteBuffer

    init(empty: ByteBuffer = .emptyOfItsOwn()) {
        self.empty = empty
        self.lastHead = empty
    }

    /// Queues a head Fulcrum makes (`make` writes it to an empty buffer): small parts written
    /// after it are appended to it.
    mutating func writeHead(to context: ChannelHandlerContext, _ make: (inout ByteBuffer) -> Void) {
        closeOpen(context)
        var head = lastHead.takeForNextHead(leaving: empty)
        make(&head)
        open = head
        hasUnflushedWrites = true
    }

    /// Queues received bytes: copied behind an open head when they are small, passed on as they
    /// are otherwise.
    mutating func write(_ bytes: ByteBuffer, to context: ChannelHandlerContext) {
        if let size = open?.readableBytes, size + bytes.readableBytes <= Self.coalescedLimit {
            open!.writeImmutableBuffer(bytes)
        } else {
            closeOpen(context)
            context.write(NIOAny(bytes), promise: nil)
        }
        hasUnflushedWrites = true
    }

    /// Sends everything queued, if anything was.
    mutating func flush(_ context: ChannelHandlerContext) {
        guard hasUnflushedWrites else { return }
        closeOpen(context)
        hasUnflushedWrites = false
        context.flush()
    }

    /// Sends everything queued, then `bytes`, completing `promise` when they are written.
    mutating func writeAndFlush(_ bytes: ByteBuffer, to context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        closeOpen(context)
        hasUnflushedWrites = false
        context.writeAndFlush(NIOAny(bytes), promise: promise)
    }

    private mutating func closeOpen(_ context: ChannelHandlerContext) {
        guard let bytes = open else { return }
        open = nil
        lastHead.keepForNextHead(bytes)
        context.write(NIOAny(bytes), promise: nil)
    }
}
