import NIOCore

/// What ``MessageReader`` needs from a head type (``RequestHead``, ``ResponseHead``).
package protocol HTTPHead {
    /// Parses a complete head, `bytes` ending with the empty line. `toHEAD` tells a response that
    /// its request was HEAD (so it has no body); requests ignore it. The field list is parsed
    /// into `fields` (emptied first), whose storage is reused when nothing else holds it.
    init(parsing bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField]) throws(HTTPMessageError)
    var framing: HTTPBodyFraming { get }
    /// Whether another head follows this one before any body (1xx responses).
    var isInterim: Bool { get }
    /// Whether empty lines before the start line are skipped (RFC 9112 §2.2, requests).
    static var skipsLeadingEmptyLines: Bool { get }
    /// The error for a head longer than ``HTTPFieldSection/maximumHeadBytes``.
    static var headTooLarge: HTTPMessageError { get }
    /// Parses a complete head, into `previous` when the type reuses its heads (requests) and
    /// nothing else holds it; into a new one otherwise.
    static func parse(_ bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField], reusing previous: inout Self?) throws(HTTPMessageError) -> Self
    /// Checks a start line (with its CRLF) that arrived before the rest of its head, so that a
    /// line that can start no valid head is refused at once rather than waited on. Throws what
    /// parsing the whole head would throw for that line.
    static func checkEarly(startLine: UnsafeRawBufferPointer) throws(HTTPMessageError)
}

extension HTTPHead {
    /// Heads that are values are not reused.
    package static func parse(_ bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField], reusing previous: inout Self?) throws(HTTPMessageError) -> Self {
        try Self(parsing: bytes, toHEAD: toHEAD, fields: &fields)
    }

    /// Parses a complete head into a field list of its own.
    package init(parsing bytes: ByteBuffer, toHEAD: Bool = false) throws(HTTPMessageError) {
        var fields: [HTTPField] = []
        try self.init(parsing: bytes, toHEAD: toHEAD, fields: &fields)
    }
}

package typealias RequestReader = MessageReader<RequestHead>
package typealias ResponseReader = MessageReader<ResponseHead>

/// Reads messages from a connection's bytes, one part at a time: a head (parsed in place), the
/// body as received, the end. The caller keeps the unread bytes and calls ``next(_:)`` again
/// when more arrive or when it is ready for the next message.
package struct MessageReader<Head: HTTPHead> {
    private enum State {
        /// Looking for the end of a head; `scanned` bytes were searched already, and the start line
        /// was checked when `startLineChecked` (``HTTPHead/checkEarly(startLine:)``).
        case head(scanned: Int, startLineChecked: Bool)
        case body(MessageBody)
        /// The message is complete; `.end` is delivered next.
        case end
    }

    private var state = State.head(scanned: 0, startLineChecked: false)
    /// The field list of the last head: its storage is reused for the next head once that head
    /// is gone (the usual case: an exchange ends before the next head is read), so a connection
    /// does not allocate one per message. Dropped when a large head made it large.
    private var fieldStorage: [HTTPField] = []
    /// Set before each request on an upstream connection: a response to HEAD has no body.
    package var awaitsResponseToHEAD = false
    /// A head given back for the next one to be parsed into (see ``recycle(_:empty:)``).
    var spareHead: Head?

    package init() {}

    /// Whether the message being read ends when the peer closes the connection.
    package var endsAtClose: Bool {
        if case .body(let body) = state { return body.endsAtClose }
        return false
    }

    /// The next part from the front of `buffer`, or `nil` when more bytes are needed.
    package mutating func next(_ buffer: inout ByteBuffer) throws(HTTPMessageError) -> MessagePart<Head>? {
        switch state {
        case .head(let scanned, var startLineChecked):
            if scanned == 0, Head.skipsLeadingEmptyLines {
                while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first == HTTPBytes.cr {
                    guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                    guard second == HTTPBytes.lf else { break }
                    buffer.moveReaderIndex(forwardBy: 2)
                }
            }
            var end: Int? = nil
            var failure: HTTPMessageError? = nil
            do throws(HTTPMessageError) {
                end = try buffer.withUnsafeReadableBytes { bytes throws(HTTPMessageError) in try HTTPFieldSection.endOfHead(bytes, from: scanned) }
            } catch {
                failure = error
            }
            if !startLineChecked, failure != nil || end == nil || end! > HTTPFieldSection.maximumHeadBytes {
                // The start line is complete once its LF is there (before `scanned` there was
                // none). Checked first, so that a head is refused for the same reason however
                // its bytes were cut into reads.
                try buffer.withUnsafeReadableBytes { bytes throws(HTTPMessageError) in
                    if let lf = HTTPBytes.firstIndex(of: HTTPBytes.lf, in: bytes, from: scanned) {
                        try Head.checkEarly(startLine: UnsafeRawBufferPointer(rebasing: bytes[0...lf]))
                        startLineChecked = true
                    }
                }
            }
            if let failure { throw failure }
            guard let end, end <= HTTPFieldSection.maximumHeadBytes else {
                guard buffer.readableBytes <= HTTPFieldSection.maximumHeadBytes else { throw Head.headTooLarge }
                state = .head(scanned: buffer.readableBytes, startLineChecked: startLineChecked)
                return nil
            }
            let head = try Head.parse(buffer.readSlice(length: end)!, toHEAD: awaitsResponseToHEAD, fields: &fieldStorage, reusing: &spareHead)
            if fieldStorage.capacity > 32 { fieldStorage = [] }
            if head.isInterim {
                state = .head(scanned: 0, startLineChecked: false)
            } else {
                state = head.framing == .none ? .end : .body(MessageBody(head.framing))
            }
            return .head(head)
        case .body(var body):
            let (bytes, complete) = try body.take(from: &buffer)
            state = complete ? .end : .body(body)
            if let bytes { return .body(bytes) }
            return complete ? try next(&buffer) : nil
        case .end:
            state = .head(scanned: 0, startLineChecked: false)
            return .end
        }
    }
}
