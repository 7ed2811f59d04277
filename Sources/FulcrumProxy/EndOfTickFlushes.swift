import NIOCore

/// Client connections whose queued writes (to the client and to its node) are flushed once their
/// event loop has handled the whole batch of I/O events it is in, rather than as each event is
/// handled, like Netty's `FlushConsolidationHandler`.
///
/// A flush is a `write` system call, and bytes that reach an idle peer wake it: on another CPU,
/// through an interprocessor interrupt, which a virtual machine pays for on both sides. Flushed
/// as they were made, the responses of one batch woke a client such as wrk once for each of
/// them; flushed together, once for the batch (figures in bench/RESULTS.md). A flush waits at
/// most for the rest of its batch.
///
/// The flushes run as one task that the loop runs after the batch (SwiftNIO runs tasks queued
/// from an I/O event after all the events of that round). Only touched on its event loop.
final class EndOfTickFlushes {
    private let eventLoop: EventLoop
    /// Not counted references: a connection is only queued while its pipeline holds it (see
    /// ``ProxyHandler/flushAtEndOfTick()``) and leaves the list when the pipeline lets it go
    /// (``withdraw(_:)``), so counted ones would only add a retain and two releases per flush of
    /// every request. A withdrawn place is `nil`.
    private var connections: [Unmanaged<ProxyHandler>?] = []
    /// The task that flushes, made once: queuing it allocates nothing.
    private lazy var flushAll: () -> Void = { [unowned self] in self.flush() }

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Has `connection`'s ``ProxyHandler/flushQueuedWrites()`` called at the end of this round.
    /// A connection queues itself once per round (``ProxyHandler`` keeps track), and only while
    /// its pipeline holds it.
    func enqueue(_ connection: ProxyHandler) {
        if connections.isEmpty { eventLoop.assumeIsolated().execute(flushAll) }
        connections.append(Unmanaged.passUnretained(connection))
    }

    /// Takes a queued connection off the list: its pipeline lets go of it, and nothing else may
    /// keep it alive until the flush.
    func withdraw(_ connection: ProxyHandler) {
        let withdrawn = Unmanaged.passUnretained(connection).toOpaque()
        if let index = connections.firstIndex(where: { $0?.toOpaque() == withdrawn }) { connections[index] = nil }
    }

    private func flush() {
        // a flush runs channel events, which may queue a connection again: by index, so that it is
        // flushed in this pass (an iterator would walk a copy, and removeAll would drop it). A
        // channel that closes in a flush lets go of its handlers in a later task, not inside it.
        var index = 0
        while index < connections.count {
            connections[index]?._withUnsafeGuaranteedRef { $0.flushQueuedWrites() }
            index += 1
        }
        connections.removeAll(keepingCapacity: true)
    }
}
