import NIOCore

/// Below swift-nio-http2's connection handler: the flushes of a connection's streams within one
/// round of the event loop become one flush of the connection, made once the round's events are
/// handled (like ``EndOfTickFlushes`` for HTTP/1.1 connections).
///
/// Every stream's response is flushed by its own proxy handler, and swift-nio-http2 passes each
/// stream's flush to the connection (it holds flushes back only inside its own read): with ten
/// streams answered in one round, the connection made ten `writev` calls, each waking the client,
/// and these writes took over a quarter of the CPU time of an HTTP/2 load (bench/RESULTS.md).
/// A close flushes first, so that what was written before it (a GOAWAY) is not dropped.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any

    private var context: ChannelHandlerContext?
    private var flushPending = false
    /// The task that flushes, made once: queuing it allocates nothing. Weak: the connection may
    /// close and its pipeline let this handler go before the task runs.
    private lazy var flushNow: () -> Void = { [weak self] in
        guard let self, flushPending, let context else { return }
        flushPending = false
        context.flush()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            context.flush()
        }
        self.context = nil
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        context.eventLoop.assumeIsolated().execute(flushNow)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}
