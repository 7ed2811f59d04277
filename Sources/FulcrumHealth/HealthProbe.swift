import FulcrumCore
import NIOCore
import NIOPosix

/// The result of one probe of one node.
public struct ProbeResult: Sendable, Equatable {
    public var success: Bool
    /// Why, in a few words: `status 200`, `status 503 not expected`, `connect failed: ...`, `timeout`.
    public var detail: String

    public init(success: Bool, detail: String) {
        self.success = success
        self.detail = detail
    }
}

/// One probe: a TCP connect, or an HTTP request whose status line (and body) is judged.
public enum HealthProbe {
    /// Probes `address` as `check` says, within `check.timeout`.
    public static func run(
        _ check: ActiveHealthCheck, address: SocketAddress, nodeHost: String, nodePort: Int, group: EventLoopGroup
    ) async -> ProbeResult {
        let timeout = TimeAmount.nanoseconds(check.timeout.nanoseconds)
        let deadline = NIODeadline.now() + timeout
        let collector = ResponseCollector(limit: 65_536, isComplete: { bytes in isComplete(bytes, check: check) })
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(to: address).get()
        } catch {
            return ProbeResult(success: false, detail: "connect failed: \(error)")
        }
        if check.kind == .tcp {
            try? await channel.close()
            return ProbeResult(success: true, detail: "connected")
        }
        let request = check.requestText(nodeHost: nodeHost, nodePort: nodePort)
        channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
        let done = (try? await channel.eventLoop.submit { collector.done }.get()) ?? nil
        let bytes = (try? await done?.get()) ?? []
        timer.cancel()
        try? await channel.close()
        return judge(bytes, check: check, timedOut: NIODeadline.now() >= deadline)
    }

    /// Whether enough of the response arrived to judge it: the whole head, and the expected body
    /// text when one is required (the node need not close the connection).
    static func isComplete(_ bytes: [UInt8], check: ActiveHealthCheck) -> Bool {
        guard let bodyStart = bodyStart(bytes) else { return false }
        guard let needle = check.bodyContains else { return true }
        return contains(bytes[bodyStart...], Array(needle.utf8))
    }

    private static func bodyStart(_ bytes: [UInt8]) -> Int? {
        let separator: [UInt8] = [13, 10, 13, 10]
        return bytes.indices.first { bytes[$0...].starts(with: separator) }.map { $0 + 4 }
    }

    private static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        haystack.indices.contains { haystack[$0...].starts(with: needle) }
    }

    /// Judges the bytes of an HTTP response (status line, then the body after the blank line).
    public static func judge(_ bytes: [UInt8], check: ActiveHealthCheck, timedOut: Bool = false) -> ProbeResult {
        let text = String(decoding: bytes, as: UTF8.self)
        let statusLine = text.prefix { $0 != "\r" && $0 != "\n" }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return ProbeResult(success: false, detail: timedOut ? "timeout" : bytes.isEmpty ? "no response" : "not an HTTP response")
        }
        guard check.accepts(status: status) else { return ProbeResult(success: false, detail: "status \(status) not expected") }
        if let needle = check.bodyContains {
            guard contains(bytes[(bodyStart(bytes) ?? bytes.endIndex)...], Array(needle.utf8)) else {
                return ProbeResult(success: false, detail: timedOut ? "timeout before the body matched" : "body does not contain '\(needle)'")
            }
        }
        return ProbeResult(success: true, detail: "status \(status)")
    }
}

/// Collects a response until it can be judged, the node closes the connection, or `limit` bytes arrived.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let limit: Int
    private let isComplete: @Sendable ([UInt8]) -> Bool
    private var bytes: [UInt8] = []
    private var promise: EventLoopPromise<[UInt8]>?

    /// Complete when the connection is closed; set when the handler is added.
    private(set) var done: EventLoopFuture<[UInt8]>?

    init(limit: Int, isComplete: @escaping @Sendable ([UInt8]) -> Bool) {
        self.limit = limit
        self.isComplete = isComplete
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: [UInt8].self)
        self.promise = promise
        self.done = promise.futureResult
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes += buffer.readableBytesView.prefix(max(0, limit - bytes.count))
        if bytes.count >= limit || isComplete(bytes) { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func finish() {
        promise?.succeed(bytes)
        promise = nil
    }
}
