import FulcrumHTTP1
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A complete response as the test client received it.
struct TestResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: String
    /// Body bytes received (the text in `body` stops at 1 MiB).
    var bodyBytes = 0
    /// Informational (1xx) statuses received before the final response.
    var informational: [HTTPResponseStatus] = []

    var backend: String? { headers.first(name: "X-Backend") }
}

enum TestClientError: Error {
    case closedBeforeResponse
}

/// A keep-alive HTTP/1.1 client over a real socket, sending one request at a time.
final class TestClient: Sendable {
    let channel: Channel
    private let collector: NIOLoopBound<ResponseCollector>

    /// TLS for a test client: the name it sends (SNI; `nil` sends none), the CA it trusts, and
    /// whether it checks that the certificate has the name (off to see what any name is given).
    struct TLS {
        var serverName: String?
        var trustedCA: String
        var checksName = true

        func makeHandler() throws -> NIOSSLClientHandler {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(trustedCA)
            configuration.certificateVerification = serverName != nil && checksName ? .fullVerification : .noHostnameVerification
            return try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: serverName)
        }
    }

    static func connect(port: Int, tls: TLS? = nil) async throws -> TestClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                    let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)
                    try channel.pipeline.syncOperations.addHandlers(HTTPRequestEncoder(), ByteToMessageHandler(decoder), ResponseCollector())
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let bound = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ResponseCollector.self), eventLoop: channel.eventLoop)
        }.get()
        return TestClient(channel: channel, collector: bound)
    }

    private init(channel: Channel, collector: NIOLoopBound<ResponseCollector>) {
        self.channel = channel
        self.collector = collector
    }

    func request(
        _ method: HTTPMethod = .GET, _ uri: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> TestResponse {
        var fields = HTTPHeaders(headers)
        if !fields.contains(name: "host") { fields.add(name: "Host", value: "localhost") }
        if let body, !fields.contains(name: "transfer-encoding") { fields.add(name: "Content-Length", value: String(body.utf8.count)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: fields)
        let collector = self.collector
        let channel = self.channel
        let future = try await channel.eventLoop.submit {
            let promise = channel.eventLoop.makePromise(of: TestResponse.self)
            collector.value.expect(promise)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return promise.futureResult
        }.get()
        return try await future.get()
    }

    /// Sends a `total`-byte body in 64 KiB pieces, each written only after the previous one reached
    /// the socket, so the client holds at most one piece however slow the other side is.
    func upload(_ uri: String, total: Int) async throws -> TestResponse {
        let head = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: uri,
            headers: ["Host": "localhost", "Content-Length": String(total)])
        let collector = self.collector
        let channel = self.channel
        let response = try await channel.eventLoop.submit {
            let promise = channel.eventLoop.makePromise(of: TestResponse.self)
            collector.value.expect(promise)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            return promise.futureResult
        }.get()
        let piece = ByteBuffer(repeating: UInt8(ascii: "u"), count: 65_536)
        var sent = 0
        while sent < total {
            let size = min(piece.readableBytes, total - sent)
            try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(piece.getSlice(at: 0, length: size)!)))
            sent += size
        }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        return try await response.get()
    }

    func close() async {
        try? await channel.close()
    }
}

/// A raw TCP connection for protocols past HTTP (WebSocket after the upgrade).
final class RawConnection: Sendable {
    private let channel: Channel
    private let received: NIOLockedValueBox<[UInt8]>

    /// - Parameter source: the local address to connect from (127.0.0.2, 127.0.0.3... stand in
    ///   for other clients).
    /// - Parameter tls: speaks TLS to the proxy when set (the bytes sent and received are the
    ///   plaintext inside it).
    static func connect(port: Int, from source: String = "127.0.0.1", to host: String = "127.0.0.1", tls: TestClient.TLS? = nil) async throws -> RawConnection {
        let received = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                    try channel.pipeline.syncOperations.addHandler(ByteSink(received: received))
                }
            }
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .connect(host: host, port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    private init(channel: Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Waits until at least `count` bytes arrived (or 3 s passed) and takes them.
    func receive(count: Int) async throws -> [UInt8] {
        for _ in 0..<300 {
            let taken: [UInt8]? = received.withLockedValue { bytes in
                guard bytes.count >= count else { return nil }
                defer { bytes.removeFirst(count) }
                return Array(bytes.prefix(count))
            }
            if let taken { return taken }
            try await Task.sleep(for: .milliseconds(10))
        }
        return received.withLockedValue { $0 }
    }

    /// Waits for an HTTP head (up to the blank line, or `limit` passed) and returns it as text.
    func receiveHead(within limit: Duration = .seconds(3)) async throws -> String {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let head: String? = received.withLockedValue { bytes in
                guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }) else { return nil }
                defer { bytes.removeFirst(end + 4) }
                return String(decoding: bytes[..<end], as: UTF8.self)
            }
            if let head { return head }
            try await Task.sleep(for: .milliseconds(10))
        }
        return ""
    }

    /// Sends `request` (which should ask for `Connection: close`) and returns everything received
    /// until the peer closed the connection (or `limit` passed).
    func exchange(_ request: String, within limit: Duration = .seconds(5)) async throws -> String {
        String(decoding: try await exchangeBytes(request, within: limit), as: UTF8.self)
    }

    func exchangeBytes(_ request: String, within limit: Duration = .seconds(5)) async throws -> [UInt8] {
        try await send(Array(request.utf8))
        _ = try await closed(within: limit)
        return received.withLockedValue { $0 }
    }

    /// Waits up to `limit` for the peer to close the connection; returns whether it did.
    func closed(within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while channel.isActive, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return !channel.isActive
    }

    func close() async {
        try? await channel.close()
    }
}

private final class ByteSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<[UInt8]>
    init(received: NIOLockedValueBox<[UInt8]>) { self.received = received }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLockedValue { $0 += buffer.readableBytesView }
    }
}

final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var pending = CircularBuffer<EventLoopPromise<TestResponse>>()
    private var current: TestResponse?
    private var informational: [HTTPResponseStatus] = []

    private var isClosed = false

    func expect(_ promise: EventLoopPromise<TestResponse>) {
        if isClosed { promise.fail(TestClientError.closedBeforeResponse) } else { pending.append(promise) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code < 200 && head.status != .switchingProtocols {
                informational.append(head.status)
            } else {
                current = TestResponse(status: head.status, headers: head.headers, body: "", informational: informational)
                informational = []
            }
        case .body(var body):
            current?.bodyBytes += body.readableBytes
            if (current?.body.utf8.count ?? 0) < 1 << 20 {
                current?.body += body.readString(length: body.readableBytes) ?? ""
            }
        case .end:
            if let response = current, let promise = pending.popFirst() { promise.succeed(response) }
            current = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        while let promise = pending.popFirst() { promise.fail(TestClientError.closedBeforeResponse) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        while let promise = pending.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}

/// Sends raw bytes and collects everything the server sends back until it closes the connection
/// or `timeout` passes, for framing tests that a well-behaved client cannot express.
enum RawClient {
    struct Result {
        var text: String
        var serverClosed: Bool
    }

    /// - Parameter reset: close with a TCP reset (SO_LINGER 0) instead of a FIN when `timeout`
    ///   passes, as a client that crashed or a middlebox would.
    static func exchange(port: Int, _ bytes: String, timeout: TimeAmount = .seconds(2), reset: Bool = false) async throws -> Result {
        try await exchange(port: port, Array(bytes.utf8), timeout: timeout, reset: reset)
    }

    static func exchange(port: Int, _ bytes: [UInt8], timeout: TimeAmount = .seconds(2), reset: Bool = false) async throws -> Result {
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Result.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawCollector(done: done)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        if reset, let socket = channel as? SocketOptionProvider { try await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get() }
        try? await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        return try await done.futureResult.get()
    }
}

final class RawCollector: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    private var text = ""
    private var closedByTimeout = false
    private let done: EventLoopPromise<RawClient.Result>

    init(done: EventLoopPromise<RawClient.Result>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        text += buffer.readString(length: buffer.readableBytes) ?? ""
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(RawClient.Result(text: text, serverClosed: !closedByTimeout))
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        closedByTimeout = true
        context.close(mode: mode, promise: promise)
    }
}
