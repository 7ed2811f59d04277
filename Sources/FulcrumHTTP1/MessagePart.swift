import NIOCore

/// A piece of an HTTP/1.1 message as the readers deliver it: the head, body bytes as received
/// (chunk framing included), and the end of the message.
package enum MessagePart<Head> {
    case head(Head)
    case body(ByteBuffer)
    case end
}

extension ByteBuffer {
    /// An empty buffer with storage of its own: what a connection holds when it has no unread
    /// bytes, so that it lets its last read buffer go. Not `ByteBuffer()`: every empty buffer
    /// SwiftNIO makes shares one storage, whose reference count each event loop would then change
    /// several times per request, the CPU cores taking its cache line from each other every time.
    package static func emptyOfItsOwn() -> ByteBuffer {
        ByteBufferAllocator().buffer(capacity: 1)
    }
}
