import NIOCore

/// A response head from a node, parsed in place like ``RequestHead``.
package struct ResponseHead: HTTPHead {
    /// The head's bytes, from the status line to the empty line included.
    package let bytes: ByteBuffer
    package let fields: [HTTPField]
    package let status: UInt
    /// Offsets of the reason phrase (empty when the node sent none).
    package let reasonStart: Int
    package let reasonEnd: Int
    package let minorVersion: Int
    package let framing: HTTPBodyFraming
    package let connection: ConnectionOptions

    /// Whether the node keeps the connection open after this response.
    package var keepAlive: Bool { framing != .untilClose && connection.persists(minorVersion: minorVersion) }

    /// A 1xx response: the final response follows (after 101 the protocol changes instead).
    package var isInterim: Bool { status < 200 }
    package static var skipsLeadingEmptyLines: Bool { false }
    package static var headTooLarge: HTTPMessageError { .malformed("response head larger than 64 KiB") }
    /// A node's status line is checked with its head: a node is not waited on as a client is.
    package static func checkEarly(startLine: UnsafeRawBufferPointer) throws(HTTPMessageError) {}

    /// Parses a complete head (`bytes` ends with the empty line) of the response to a request
    /// whose method was HEAD when `toHEAD` is set.
    package init(parsing bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField]) throws(HTTPMessageError) {
        // every field is set after the last throw: a throw after a partial initialisation made
        // the initialiser build the value aside and copy it out (retaining its buffers again)
        fields.removeAll(keepingCapacity: true)
        fields.reserveCapacity(12)
        var status: UInt = 0
        var reason = (0, 0)
        var minor = 1
        var framing = HTTPBodyFraming.none
        var connection = ConnectionOptions()
        try bytes.withUnsafeReadableBytes { raw throws(HTTPMessageError) in
            // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
            minor = try HTTPVersion.parse(raw, at: 0)
            guard raw[8] == HTTPBytes.space else { throw .malformed("invalid status line") }
            for index in 9..<12 {
                let digit = raw[index] &- UInt8(ascii: "0")
                guard digit < 10 else { throw .malformed("invalid status code") }
                status = status * 10 + UInt(digit)
            }
            guard status >= 100 else { throw .malformed("invalid status code") }
            // HTTP/1.0 has no interim responses (RFC 9110 §15.2), and a 1.0 message without
            // keep-alive ends its connection: llhttp reads nothing after one, so none is relayed
            guard status >= 200 || minor == 1 else { throw .malformed("1xx response in HTTP/1.0") }
            var index = 12
            if raw[index] == HTTPBytes.space {
                index += 1
                reason.0 = index
                var highBytes = false  // forwarded as they are
                index = try HTTPFieldSection.endOfValue(raw, from: index, sawHighBytes: &highBytes, invalid: .malformed("invalid reason phrase"))
                reason.1 = index
            }
            guard raw[index] == HTTPBytes.cr, raw[index + 1] == HTTPBytes.lf else { throw .malformed("invalid status line") }
            _ = try HTTPFieldSection.parse(raw, from: index + 2, into: &fields)

            var contentLength: Int? = nil
            var transferCodings = 0
            var chunkedLast = false
            for field in fields {
                let start = Int(field.nameStart)
                let end = Int(field.nameEnd)
                switch end - start {
                case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "connection"):
                    connection.add(raw, field)
                case 14 where HTTPBytes.equalsIgnoringCase(raw, start, end, "content-length"):
                    guard !HTTPFieldSection.hasTabAroundValue(raw, field) else { throw .malformed("tab around Content-Length") }
                    let length = try HTTPFieldSection.contentLength(raw, field)
                    guard contentLength == nil || contentLength == length else { throw .malformed("conflicting Content-Length") }
                    contentLength = length
                case 17 where HTTPBytes.equalsIgnoringCase(raw, start, end, "transfer-encoding"):
                    guard !HTTPFieldSection.hasTabAroundValue(raw, field) else { throw .malformed("tab around Transfer-Encoding") }
                    guard !HTTPFieldSection.hasEmptyElement(raw, field) else { throw .malformed("empty element in Transfer-Encoding") }
                    HTTPFieldSection.forEachElement(raw, field) { start, end in
                        transferCodings += 1
                        chunkedLast = HTTPBytes.equalsIgnoringCase(raw, start, end, "chunked")
                    }
                default:
                    break
                }
            }
            if transferCodings > 0, contentLength != nil { throw .malformed("both Content-Length and Transfer-Encoding") }
            if toHEAD || status < 200 || status == 204 || status == 304 {
                framing = .none
            } else if transferCodings > 0 {
                framing = chunkedLast ? .chunked : .untilClose
            } else if let contentLength {
                framing = contentLength > 0 ? .length(contentLength) : .none
            } else {
                framing = .untilClose
            }
        }
        self.bytes = bytes
        self.fields = fields
        self.status = status
        (reasonStart, reasonEnd) = reason
        minorVersion = minor
        self.framing = framing
        self.connection = connection
    }
}
