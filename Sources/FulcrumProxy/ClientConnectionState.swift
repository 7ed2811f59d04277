import FulcrumCore
import FulcrumHTTP1
import NIOCore

/// Where a client connection is in its current exchange. Owned by ``ProxyHandler``.
enum ClientConnectionState {
    /// Between requests (keep-alive) or before the first one.
    case idle
    /// A request is routed and waits for an upstream connection; its body parts are buffered.
    case acquiring(Exchange)
    /// Request and response flow between the client and the attached upstream connection.
    case proxying(Exchange, UpstreamHandler)
    /// Fulcrum answered the request itself (404, 503...); the rest of the request body is dropped.
    case answeredLocally(closeAfterRequest: Bool)
    /// The request's body is read to choose among routes with a body condition.
    case readingBodyForRouting(BodyRouting)
    /// A static route sends a file (or looks it up); the rest of the request is dropped.
    case servingFile(FileTransfer)
    /// The connection was upgraded (101) and bytes are relayed as they are, both ways.
    case tunneling(UpstreamHandler)
    /// The connection is closing or closed.
    case closed

    var exchange: Exchange? {
        switch self {
        case .acquiring(let exchange), .proxying(let exchange, _): return exchange
        default: return nil
        }
    }
}

/// A file a static route is sending: where the transfer is and how its exchange ends. Owned by
/// ``ProxyHandler`` while the connection is ``ClientConnectionState/servingFile(_:)``.
final class FileTransfer {
    /// The most read from the file at once: each piece costs a trip to the thread pool, and
    /// 64 KiB pieces served a 1 MiB file at 0.35 of nginx's rate (bench/static.sh).
    static let pieceBytes = 256 * 1024
    /// The most handed to the kernel at once on a plaintext HTTP/1.1 connection (`sendfile`): a
    /// region is written whole before the next, so stall detection sees a slow download progress.
    static let regionBytes = 1 << 20

    let head: RequestHead
    let requestID: RequestID
    let routeIndex: Int
    let start: NIODeadline
    /// Whether the connection closes after the response.
    let close: Bool
    /// The route's `response_headers`, rendered.
    let extraFields: [(String, String)]
    /// Held while bytes remain to be sent.
    var file: OpenFile?
    var offset: Int64 = 0
    var remaining: Int64 = 0
    var status: UInt = 200
    /// Body bytes sent.
    var sent = 0
    /// Whether the request's end (after any body, dropped) was read.
    var requestEnded = false
    /// Whether the next piece waits for the client's channel to take writes again.
    var waitsForWritability = false

    init(head: RequestHead, requestID: RequestID, routeIndex: Int, start: NIODeadline, close: Bool, extraFields: [(String, String)]) {
        self.head = head
        self.requestID = requestID
        self.routeIndex = routeIndex
        self.start = start
        self.close = close
        self.extraFields = extraFields
    }
}

/// A request whose body is read before it is routed (routes with a body condition): what was
/// decided without the body, and the body so far. Owned by ``ProxyHandler`` while the connection
/// is ``ClientConnectionState/readingBodyForRouting(_:)``.
final class BodyRouting {
    let request: HeadRoutingRequest
    let requestID: RequestID
    let client: IPAddress
    /// The configuration the request was routed with (the candidates are its routes).
    let runtime: RuntimeConfig
    /// The body routes whose other conditions hold.
    let candidates: [Int]
    /// Where the request goes if no candidate takes it (the default target, or `nil`: 404).
    let fallback: Routed?
    let limit: Int
    var parts: [ByteBuffer] = []
    var size = 0

    init(request: HeadRoutingRequest, requestID: RequestID, client: IPAddress, runtime: RuntimeConfig, candidates: [Int], fallback: Routed?, limit: Int) {
        self.request = request
        self.requestID = requestID
        self.client = client
        self.runtime = runtime
        self.candidates = candidates
        self.fallback = fallback
        self.limit = limit
    }
}
