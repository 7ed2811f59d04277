import NIOCore

/// Withholds `read()` from a channel while the other side of a proxied exchange cannot take more
/// data, and releases the withheld read when it can: backpressure with no buffering beyond one read.
struct ReadGate {
    private(set) var isPaused = false
    private var pendingRead = false

    /// Called from the handler's `read(context:)`.
    mutating func read(_ context: ChannelHandlerContext) {
        if isPaused { pendingRead = true } else { context.read() }
    }

    mutating func pause() { isPaused = true }

    mutating func resume(_ context: ChannelHandlerContext) {
        isPaused = false
        if pendingRead {
            pendingRead = false
            context.read()
        }
    }
}
