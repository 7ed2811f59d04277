/// How the end of a message body is found (RFC 9112 §6.3).
package enum HTTPBodyFraming: Equatable {
    /// No body: a request without Content-Length or Transfer-Encoding, a response to HEAD, 1xx, 204, 304.
    case none
    /// Exactly this many bytes (`Content-Length`).
    case length(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// A response without framing: the body ends when the node closes the connection.
    case untilClose
}
