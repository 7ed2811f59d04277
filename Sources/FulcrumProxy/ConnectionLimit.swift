import Atomics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Caps the client connections open at once across all listeners and event loops
/// (`max_connections`). At the cap the listeners stop accepting, and new connections wait in the
/// kernel's backlog until one closes, as with HAProxy's `maxconn`. Without a cap, running out of
/// file descriptors would make connects to nodes fail, and healthy nodes would be blamed for it.
/// Counted per connection (accept and close), never per request.
final class ConnectionLimit: Sendable {
    private let open = ManagedAtomic(0)
    private let limit: ManagedAtomic<Int>
    /// Set while the listeners are told not to accept.
    private let paused = ManagedAtomic(false)
    /// When the last "limit reached" warning was logged (uptime nanoseconds), so that a server
    /// running at its cap logs it every ten seconds, not on every connection.
    private let lastWarning = ManagedAtomic<UInt64>(0)
    private let listeners = NIOLockedValueBox<[Channel]>([])
    private let logger: Logger

    init(limit: Int, logger: Logger) {
        self.limit = ManagedAtomic(limit)
        self.logger = logger
    }

    /// The limit when the configuration sets none: half the open-file limit (a proxied connection
    /// holds two descriptors), keeping 64 for listeners, probes, logs and the store.
    static func automatic() -> Int {
        guard let soft = OpenFileLimit.soft else { return 1 << 20 }
        return max(16, (soft - 64) / 2)
    }

    /// The cap in force.
    var cap: Int { limit.load(ordering: .relaxed) }

    /// A listener that stops accepting at the cap.
    func watch(_ listener: Channel) {
        listeners.withLockedValue { $0.append(listener) }
    }

    /// Sets a new cap (a reload); listeners waiting under a raised cap accept again.
    func setLimit(_ value: Int) {
        limit.store(value, ordering: .relaxed)
        resumeIfBelow()
    }

    /// Counts a connection the listener behind `context` accepted, and stops that listener at the cap.
    func accepted(_ connection: Channel, listener context: ChannelHandlerContext) {
        let count = open.wrappingIncrementThenLoad(ordering: .relaxed)
        connection.closeFuture.whenComplete { [self] _ in
            open.wrappingDecrement(ordering: .relaxed)
            resumeIfBelow()
        }
        let cap = limit.load(ordering: .relaxed)
        guard count >= cap else { return }
        paused.store(true, ordering: .sequentiallyConsistent)
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastWarning.load(ordering: .relaxed)
        if now - last >= 10_000_000_000, lastWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning("connection limit reached: new connections wait until one closes", metadata: ["max_connections": "\(cap)"])
        }
        resumeIfBelow()  // a connection may have closed before the pause was set
    }

    private func resumeIfBelow() {
        guard open.load(ordering: .sequentiallyConsistent) < limit.load(ordering: .relaxed),
            paused.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
        else { return }
        for listener in listeners.withLockedValue({ $0 }) {
            listener.setOption(.autoRead, value: true).whenComplete { _ in }
        }
    }
}

/// Sits first in a listener's pipeline and shows each accepted connection to the
/// ``ConnectionLimit`` before the bootstrap sets it up.
final class ConnectionLimitHandler: ChannelInboundHandler {
    typealias InboundIn = Channel

    private let limit: ConnectionLimit

    init(limit: ConnectionLimit) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        limit.accepted(unwrapInboundIn(data), listener: context)
        context.fireChannelRead(data)
    }
}
