import FulcrumCore
import FulcrumHTTP1
import FulcrumTLS
import NIOConcurrencyHelpers
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

/// One probe: a TCP connect (and the TLS handshake, for a node reached over TLS), or an HTTP
/// request whose response (status, and body text when the check asks for one) is judged.
public enum HealthProbe {
    /// Probes `address` as `check` says, within `check.timeout`, over TLS when `tls` is set.
    public static func run(
        _ check: ActiveHealthCheck, address: SocketAddress, nodeHost: String, nodePort: Int, tls: UpstreamTLS? = nil,
        group: EventLoopGroup
    ) async -> ProbeResult {
        let timeout = TimeAmount.nanoseconds(check.timeout.nanoseconds)
        let deadline = NIODeadline.now() + timeout
        let request = check.requestText(nodeHost: nodeHost, nodePort: nodePort)
        let reader = ProbeReader(ProbeResponse(check: check, toHEAD: request.hasPrefix("HEAD ")))
        let channel: Channel
        let handshake = NIOLockedValueBox<EventLoopFuture<Void>?>(nil)
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try handshake.withLockedValue { $0 = try tls.addHandshake(to: channel, timeout: timeout) } }
                        try channel.pipeline.syncOperations.addHandler(reader)
                    }
                }
                .connect(to: address).get()
        } catch {
            return ProbeResult(success: false, detail: "connect failed: \(error)")
        }
        if let done = handshake.withLockedValue({ $0 }) {
            do { try await done.get() } catch {
                try? await channel.close()
                return ProbeResult(success: false, detail: "\(error)")
            }
        }
        if check.kind == .tcp {
            try? await channel.close()
            return ProbeResult(success: true, detail: "connected")
        }
        channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
        let done = (try? await channel.eventLoop.submit { reader.done }.get()) ?? nil
        let response = try? await done?.get()
        timer.cancel()
        try? await channel.close()
        return response?.verdict(timedOut: NIODeadline.now() >= deadline) ?? ProbeResult(success: false, detail: "no response")
    }
}

/// A probe's response as read so far, by the HTTP/1 reader the proxy uses for nodes' responses
/// (framing, interim responses and malformed heads are understood as the proxy understands them).
/// Judged as soon as it can be: on the status when the check needs no body text, on the body
/// text once it is found, at the end of the response otherwise; the node need not close.
struct ProbeResponse {
    /// The body bytes kept for the text search; a longer body is judged on its beginning.
    static let bodyLimit = 65_536

    private let check: ActiveHealthCheck
    private let needle: [UInt8]?
    private var reader = ResponseReader()
    private var unread = ByteBuffer()
    private var receivedAny = false
    private var status: UInt?
    /// The body as sent (a chunked body with its framing: the text is found within a chunk).
    private var body: [UInt8] = []
    private var ended = false
    private var error: HTTPMessageError?
    /// Set once the response can be judged without more bytes.
    private(set) var isDecided = false

    init(check: ActiveHealthCheck, toHEAD: Bool) {
        self.check = check
        self.needle = check.bodyContains.map { Array($0.utf8) }
        reader.awaitsResponseToHEAD = toHEAD
    }

    /// Reads what arrived; sets ``isDecided`` when nothing more is needed.
    mutating func receive(_ bytes: inout ByteBuffer) {
        guard !isDecided else { return }
        if bytes.readableBytes > 0 { receivedAny = true }
        unread.writeBuffer(&bytes)
        do throws(HTTPMessageError) {
            while !isDecided, let part = try reader.next(&unread) {
                switch part {
                case .head(let head):
                    guard !head.isInterim else { continue }
                    status = head.status
                    if !check.accepts(status: Int(head.status)) || needle == nil { isDecided = true }
                case .body(let part):
                    body += part.readableBytesView.prefix(max(0, Self.bodyLimit - body.count))
                    if bodyMatches || body.count >= Self.bodyLimit { isDecided = true }
                case .end:
                    ended = true
                    isDecided = true
                }
            }
        } catch {
            self.error = error
            isDecided = true
        }
    }

    private var bodyMatches: Bool {
        guard let needle else { return true }
        return body.count >= needle.count && body.indices.dropLast(needle.count - 1).contains { body[$0...].starts(with: needle) }
    }

    /// The result from what was received; `timedOut` when the probe gave up waiting for more.
    func verdict(timedOut: Bool) -> ProbeResult {
        if let error { return ProbeResult(success: false, detail: "invalid response: \(error.reason)") }
        guard let status else {
            let detail = timedOut ? "timeout" : !receivedAny ? "no response" : unread.readableBytes > 0 && !unread.readableBytesView.starts(with: "HTTP/".utf8) ? "not an HTTP response" : "incomplete response head"
            return ProbeResult(success: false, detail: detail)
        }
        guard check.accepts(status: Int(status)) else { return ProbeResult(success: false, detail: "status \(status) not expected") }
        if let text = check.bodyContains, !bodyMatches {
            let stoppedEarly = timedOut && !ended
            return ProbeResult(success: false, detail: stoppedEarly ? "timeout before the body matched" : "body does not contain '\(text)'")
        }
        return ProbeResult(success: true, detail: "status \(status)")
    }
}

/// Feeds a probe's connection to its ``ProbeResponse`` and closes the connection once the
/// response is judged, the node closes it, or the probe's timer does.
private final class ProbeReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var response: ProbeResponse
    private var promise: EventLoopPromise<ProbeResponse>?

    /// Complete when the connection is closed; set when the handler is added.
    private(set) var done: EventLoopFuture<ProbeResponse>?

    init(_ response: ProbeResponse) {
        self.response = response
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: ProbeResponse.self)
        self.promise = promise
        self.done = promise.futureResult
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        response.receive(&bytes)
        if response.isDecided { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func finish() {
        promise?.succeed(response)
        promise = nil
    }
}
