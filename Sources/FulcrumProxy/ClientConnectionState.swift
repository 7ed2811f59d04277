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
