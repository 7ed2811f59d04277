import NIOCore

/// A piece of an HTTP/1.1 message as the readers deliver it: the head, body bytes as received
/// (chunk framing included), and the end of the message.
enum HTTPPart<Head> {
    case head(Head)
    case body(ByteBuffer)
    case end
}

extension ByteBuffer {
    /// An empty buffer shared by all connections: what a connection holds when it has no
    /// unread bytes (it lets the last read buffer go and allocates nothing).
    static let noBytes = ByteBuffer()
}
