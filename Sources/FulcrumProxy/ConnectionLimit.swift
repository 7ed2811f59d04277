import Atomics
import FulcrumCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Caps the client connections open at once across all listeners and event loops
/// (`max_connections`), and optionally per client address (`max_connections_per_client`).
/// At the cap the listeners stop accepting, and new connections wait in the kernel's backlog
/// until one closes, as with HAProxy's `maxconn`; while it lasts, the event loops close the
/// connections still sending their first head (see ``LoopContext``), so that slow clients cannot
/// keep everyone else waiting. Without a cap, running out of file descriptors would make
/// connects to nodes fail, and healthy nodes would be blamed for it. Counted per connection
/// (accept and close), never per request: the per-client table takes a lock, the hot path none.
final class ConnectionLimit: Sendable {
    private let open = ManagedAtomic(0)
    private let limit: ManagedAtomic<Int>
    /// Connections one client address may hold; 0 for no limit.
    private let perClientLimit: ManagedAtomic<Int>
    /// Open connections by client address, kept only while a per-client limit is set.
    private let perClient = NIOLockedValueBox<[IPAddress: Int]>([:])
    /// Connections closed at accept because their address held its share, and when that was last logged.
    private let refusedPerClient = ManagedAtomic(0)
    private let lastPerClientWarning = ManagedAtomic<UInt64>(0)
    /// Set while the listeners are told not to accept.
    private let paused = ManagedAtomic(false)
    /// When the last "limit reached" warning was logged (uptime nanoseconds), so that a server
    /// running at its cap logs it every ten seconds, not on every connection.
    private let lastWarning = ManagedAtomic<UInt64>(0)
    private let listeners = NIOLockedValueBox<[Channel]>([])
    private let logger: Logger

    init(limit: Int, perClient: Int?, logger: Logger) {
        self.limit = ManagedAtomic(limit)
        self.perClientLimit = ManagedAtomic(perClient ?? 0)
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

    /// Whether the listeners are paused at the cap now.
    var isAtCap: Bool { paused.load(ordering: .relaxed) }

    /// A listener that stops accepting at the cap.
    func watch(_ listener: Channel) {
        listeners.withLockedValue { $0.append(listener) }
    }

    /// Sets new caps (a reload); listeners waiting under a raised cap accept again. A new
    /// per-client limit applies to the next connections; those open are not closed. Connections
    /// accepted while no per-client limit was set are not in the table and do not count.
    func setLimits(_ value: Int, perClient: Int?) {
        limit.store(value, ordering: .relaxed)
        perClientLimit.store(perClient ?? 0, ordering: .relaxed)
        resumeIfBelow()
    }

    /// Counts a connection the listener behind `context` accepted, and stops that listener at the
    /// cap. Returns `false` when the connection's address already holds its share: the caller
    /// closes it without serving it.
    func accepted(_ connection: Channel, listener context: ChannelHandlerContext) -> Bool {
        let share = perClientLimit.load(ordering: .relaxed)
        if share > 0, let remote = connection.remoteAddress, let address = IPAddress(socketAddress: remote) {
            guard admit(address, share: share) else {
                refusedByAddress(remote.ipAddress ?? "-", share: share)
                return false
            }
            connection.closeFuture.whenComplete { [self] _ in release(address) }
        }
        let count = open.wrappingIncrementThenLoad(ordering: .relaxed)
        connection.closeFuture.whenComplete { [self] _ in
            open.wrappingDecrement(ordering: .relaxed)
            resumeIfBelow()
        }
        let cap = limit.load(ordering: .relaxed)
        guard count >= cap else { return true }
        paused.store(true, ordering: .sequentiallyConsistent)
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastWarning.load(ordering: .relaxed)
        if now - last >= 10_000_000_000, lastWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning("connection limit reached: new connections wait until one closes", metadata: ["max_connections": "\(cap)"])
        }
        resumeIfBelow()  // a connection may have closed before the pause was set
        return true
    }

    private func admit(_ address: IPAddress, share: Int) -> Bool {
        perClient.withLockedValue { counts in
            let held = counts[address, default: 0]
            guard held < share else { return false }
            counts[address] = held + 1
            return true
        }
    }

    private func release(_ address: IPAddress) {
        perClient.withLockedValue { counts in
            guard let held = counts[address] else { return }
            counts[address] = held > 1 ? held - 1 : nil
        }
    }

    /// Counts a connection refused for its address, and logs at most every ten seconds (a client
    /// opening connections in a loop would otherwise write a line for each).
    private func refusedByAddress(_ client: String, share: Int) {
        refusedPerClient.wrappingIncrement(ordering: .relaxed)
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastPerClientWarning.load(ordering: .relaxed)
        guard now - last >= 10_000_000_000, lastPerClientWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else { return }
        let refused = refusedPerClient.exchange(0, ordering: .relaxed)
        logger.warning("client address holds its share of connections: new ones are closed at accept", metadata: [
            "client": "\(client)", "max_connections_per_client": "\(share)", "refused": "\(refused)",
        ])
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
        let connection = unwrapInboundIn(data)
        guard limit.accepted(connection, listener: context) else {
            // not registered yet: closing it here is what the bootstrap itself does with a
            // connection it cannot set up
            connection.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}
