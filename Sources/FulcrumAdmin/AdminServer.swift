import Atomics
import Hummingbird
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The admin listener: Hummingbird carrying ``AdminAPI`` on its own address (127.0.0.1 unless
/// told otherwise), on NIO's shared event loops, apart from the data plane's.
public final class AdminServer: Sendable {
    /// The address actually bound (useful with port 0).
    public let address: SocketAddress
    private let task: Task<Void, Error>

    private init(address: SocketAddress, task: Task<Void, Error>) {
        self.address = address
        self.task = task
    }

    /// Binds and starts serving; returns once the listener is open.
    ///
    /// - Throws: when the address cannot be bound.
    public static func start(api: AdminAPI, host: String, port: Int, logger: Logger = Logger(label: "fulcrum.admin")) async throws -> AdminServer {
        let started = OneShot<SocketAddress?>()
        // Hummingbird's own log lines are about single connections (and, on stop, the connections
        // still open being cancelled); failures that matter are thrown or answered by the API.
        var hummingbirdLogger = logger
        hummingbirdLogger.logLevel = .critical
        let openConnections = ManagedAtomic(0)
        let application = Application(
            responder: AdminResponder(api: api),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [AdminConnectionCap(open: openConnections)], idleTimeout: Self.idleTimeout)),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil, reuseAddress: true),
            onServerRunning: { channel in started.resolve(.success(channel.localAddress)) },
            logger: hummingbirdLogger)
        let task = Task {
            do {
                try await application.run()
                started.resolve(.failure(AdminListenError(address: "\(host):\(port)", reason: "the server stopped before it started")))
            } catch {
                started.resolve(.failure(AdminListenError(address: "\(host):\(port)", reason: "\(error)")))
                throw error
            }
        }
        guard let address = try await started.wait() else {
            task.cancel()
            throw AdminListenError(address: "\(host):\(port)", reason: "no local address")
        }
        return AdminServer(address: address, task: task)
    }

    /// Stops the listener; returns when it stopped, or after 2 s at most (Hummingbird waits for
    /// connections still open, and a shutdown must not hang on a client).
    public func stop() async {
        task.cancel()
        let stopped = OneShot<Void>()
        let task = self.task
        Task {
            _ = await task.result
            stopped.resolve(.success(()))
        }
        Task {
            try? await Task.sleep(for: .seconds(2))
            stopped.resolve(.success(()))
        }
        try? await stopped.wait()
    }
}

extension AdminServer {
    /// The most admin connections open at once; more are closed as they come. The admin API is
    /// for a few operators and tools: without a cap, 20,000 idle connections used every file
    /// descriptor and the data plane stopped answering.
    static let maximumConnections = 64
    /// An admin connection with no request for this long is closed (before, idle ones stayed open
    /// for ever).
    static let idleTimeout = TimeAmount.seconds(10)
}

/// Closes an admin connection beyond ``AdminServer/maximumConnections`` as soon as it is active.
final class AdminConnectionCap: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let open: ManagedAtomic<Int>

    init(open: ManagedAtomic<Int>) { self.open = open }

    func handlerAdded(context: ChannelHandlerContext) {
        if open.wrappingIncrementThenLoad(ordering: .relaxed) > AdminServer.maximumConnections { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        open.wrappingDecrement(ordering: .relaxed)
    }
}

/// The admin listener could not be opened.
public struct AdminListenError: Error, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var description: String { "cannot open the admin listener on \(address): \(reason)" }
}

/// A value delivered once (the first `resolve` wins) to one waiter, whichever comes first.
private final class OneShot<Value: Sendable>: Sendable {
    private let state = NIOLockedValueBox<(result: Result<Value, Error>?, waiter: CheckedContinuation<Value, Error>?)>((nil, nil))

    func resolve(_ result: Result<Value, Error>) {
        let waiter: CheckedContinuation<Value, Error>? = state.withLockedValue { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    func wait() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Value, Error>? = state.withLockedValue { state in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// The context of one admin request: Hummingbird's own plus the client's address.
struct AdminRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let client: String
    let channel: Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        client = source.channel.remoteAddress?.ipAddress ?? "-"
        channel = source.channel
    }
}

/// Adapts Hummingbird requests to ``AdminAPI``.
struct AdminResponder: HTTPResponder {
    let api: AdminAPI

    func respond(to request: Request, context: AdminRequestContext) async throws -> Response {
        var request = request
        var bodyRead = false
        var tooLarge = false
        let answer = await api.respond(
            to: AdminAPI.Request(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                authorization: request.headers[.authorization], ifMatch: request.headers[.ifMatch],
                contentType: request.headers[.contentType], client: context.client),
            readBody: {
                bodyRead = true
                do {
                    let buffer = try await request.collectBody(upTo: AdminAPI.maximumBodySize)
                    return .bytes(buffer.readableBytes > 0 ? Array(buffer.readableBytesView) : nil)
                } catch {
                    // over the limit (NIOTooManyBytesError, or Hummingbird's 413 for a Content-Length
                    // over it); any other failure leaves no connection to answer on
                    tooLarge = true
                    return .tooLarge
                }
            })
        // A body refused unread (401, 404, 405...) or read only to the limit is not read further:
        // reading stops and the connection closes after the answer (Hummingbird would otherwise
        // read the rest to reach the next request).
        let announcesBody = request.headers[.contentLength].map { $0 != "0" } ?? false || request.headers[.transferEncoding] != nil
        let abandonsBody = tooLarge || (!bodyRead && announcesBody)
        if abandonsBody { context.channel.close(mode: .input, promise: nil) }
        return Self.response(answer, closing: abandonsBody)
    }

    private static func response(_ answer: AdminAPI.Response, closing: Bool) -> Response {
        var headers = HTTPFields()
        for (name, value) in answer.headers {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        if closing { headers.append(HTTPField(name: .connection, value: "close")) }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
    }
}
