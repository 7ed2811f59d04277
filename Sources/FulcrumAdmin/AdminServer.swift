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
        let application = Application(
            responder: AdminResponder(api: api),
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

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        client = source.channel.remoteAddress?.ipAddress ?? "-"
    }
}

/// Adapts Hummingbird requests to ``AdminAPI``.
struct AdminResponder: HTTPResponder {
    let api: AdminAPI

    func respond(to request: Request, context: AdminRequestContext) async throws -> Response {
        var request = request
        var body: [UInt8]?
        var tooLarge = false
        do {
            let buffer = try await request.collectBody(upTo: AdminAPI.maximumBodySize)
            if buffer.readableBytes > 0 { body = Array(buffer.readableBytesView) }
        } catch is NIOTooManyBytesError {
            tooLarge = true
        } catch let error as HTTPError where error.status == .contentTooLarge {
            tooLarge = true
        }
        let answer = await api.respond(to: AdminAPI.Request(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
            authorization: request.headers[.authorization], ifMatch: request.headers[.ifMatch],
            contentType: request.headers[.contentType], body: body, bodyTooLarge: tooLarge, client: context.client))
        var headers = HTTPFields()
        for (name, value) in answer.headers {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        if tooLarge { headers.append(HTTPField(name: .connection, value: "close")) }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
    }
}
