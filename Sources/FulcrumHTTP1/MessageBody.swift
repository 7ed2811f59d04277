import NIOCore

/// The body of the message being read, taken from the connection's bytes as they arrive and
/// forwarded unchanged (chunk framing included).
package struct MessageBody {
    private enum Framing {
        case length(remaining: Int)
        case chunked(ChunkedBodyScanner)
        case untilClose
    }

    private var framing: Framing

    /// `framing` must not be ``HTTPBodyFraming/none``.
    package init(_ framing: HTTPBodyFraming) {
        switch framing {
        case .length(let length): self.framing = .length(remaining: length)
        case .chunked: self.framing = .chunked(ChunkedBodyScanner())
        case .untilClose, .none: self.framing = .untilClose
        }
    }

    /// Whether the body ends only when the connection closes.
    package var endsAtClose: Bool {
        if case .untilClose = framing { return true }
        return false
    }

    /// Takes the body's bytes from the front of `buffer` (`nil` when there are none) and tells
    /// whether the body is now complete.
    package mutating func take(from buffer: inout ByteBuffer) throws(HTTPMessageError) -> (bytes: ByteBuffer?, complete: Bool) {
        let available = buffer.readableBytes
        switch framing {
        case .length(let remaining):
            let length = min(remaining, available)
            framing = .length(remaining: remaining - length)
            return (length > 0 ? buffer.readSlice(length: length) : nil, remaining == length)
        case .chunked(var scanner):
            let length = try buffer.withUnsafeReadableBytes { bytes throws(HTTPMessageError) in try scanner.scan(bytes) }
            framing = .chunked(scanner)
            return (length > 0 ? buffer.readSlice(length: length) : nil, scanner.isComplete)
        case .untilClose:
            return (available > 0 ? buffer.readSlice(length: available) : nil, false)
        }
    }
}
