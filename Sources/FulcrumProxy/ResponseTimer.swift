import NIOCore

/// The upstream-response timeouts of one event loop, kept with a single timer instead of a
/// scheduled task per request (NIO's scheduling allocates and takes its task-queue lock each
/// time). Waiting exchanges are listed with their deadline; the timer fires at the earliest one,
/// times out what has expired and re-arms for the next. Requests answered in time only cost an
/// append and a swap-remove.
final class ResponseTimer {
    private let eventLoop: EventLoop
    private var waiting: [ProxyHandler] = []
    /// The deadline the pending timer task fires for, if one is pending.
    private var armedFor: NIODeadline?

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Starts watching `handler`, whose exchange has a ``ProxyHandler/responseDeadline``.
    func add(_ handler: ProxyHandler) {
        guard handler.timerSlot == nil else { return }
        handler.timerSlot = waiting.count
        waiting.append(handler)
        if let armedFor, armedFor <= handler.responseDeadline { return }
        arm(handler.responseDeadline)
    }

    /// Stops watching `handler` (its response began, or its exchange ended).
    func remove(_ handler: ProxyHandler) {
        guard let slot = handler.timerSlot else { return }
        handler.timerSlot = nil
        let last = waiting.removeLast()
        if slot < waiting.count {
            waiting[slot] = last
            last.timerSlot = slot
        }
    }

    private func arm(_ deadline: NIODeadline) {
        armedFor = deadline
        eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard armedFor == deadline else { return }  // superseded by an earlier deadline
            armedFor = nil
            let now = NIODeadline.now()
            let expired = waiting.filter { $0.responseDeadline <= now }
            for handler in expired {
                remove(handler)
                handler.responseTimedOut()
            }
            if let next = waiting.lazy.map(\.responseDeadline).min() { arm(next) }
        }
    }
}
