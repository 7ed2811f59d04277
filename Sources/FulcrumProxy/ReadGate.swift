import NIOCore

/// Stops a channel's reads while the other side of a proxied exchange cannot take more data, and
/// restarts them when it can: backpressure with no buffering beyond the socket reads of the read
/// cycle in progress (at most `maxMessagesPerRead`, which NIO completes). It switches the
/// channel's `autoRead` option, so the handlers need not sit in the path of every `read()` (a
/// handler that intercepted them would cost a trip through it on every read cycle).
struct ReadGate {
    private(set) var isPaused = false

    mutating func pause(_ context: ChannelHandlerContext) {
        guard !isPaused else { return }
        isPaused = true
        Self.setAutoRead(false, context)
    }

    mutating func resume(_ context: ChannelHandlerContext) {
        guard isPaused else { return }
        isPaused = false
        Self.setAutoRead(true, context)
        // a socket channel reads again when autoRead is switched on; an HTTP/2 stream channel
        // only records the option, and hands on the frames it holds at the next read
        context.read()
    }

    private static func setAutoRead(_ value: Bool, _ context: ChannelHandlerContext) {
        // on the channel's event loop the synchronous options are there, and setting this one
        // cannot fail on an open channel (on a closed one there is nothing left to read)
        try? context.channel.syncOptions?.setOption(.autoRead, value: value)
    }
}
