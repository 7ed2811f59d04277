import NIOCore

/// A request head as received, parsed in place: the bytes themselves, and offsets of the method,
/// target and header fields. Nothing is copied per header; forwarding writes the received bytes.
/// A class: the head is handed from the reader to routing, the exchange and the logs, and passing
/// one reference costs one retain where a struct with its buffer, text and field list costs four.
/// A connection parses its next head into the same object once nothing else holds it
/// (``parse(_:toHEAD:fields:reusing:)``), so that a keep-alive request allocates no head.
package final class RequestHead: HTTPHead {
    /// The head's bytes, from the request line to the empty line included.
    package private(set) var bytes = ByteBuffer()
    /// The request target as text, for routing and logs (always ASCII: the reader refuses other
    /// bytes in a target). A short target fits in the String itself, with nothing allocated.
    package private(set) var targetText = ""
    /// Whether a header value holds bytes above 0x7F (they appear as `?` in ``text``).
    private var highBytes = false
    /// ``text`` once made.
    private var madeText: String?
    /// The whole head as text, for header values (bytes above 0x7F appear as `?`). Made when a
    /// header is first asked for: routes that match only on paths never need it.
    private var text: String {
        if let madeText { return madeText }
        let made = bytes.withUnsafeReadableBytes { raw in
            String(unsafeUninitializedCapacity: raw.count) { text in
                if highBytes {
                    for index in 0..<raw.count { text[index] = raw[index] > 0x7F ? UInt8(ascii: "?") : raw[index] }
                } else {
                    UnsafeMutableRawBufferPointer(text).copyMemory(from: raw)
                }
                return raw.count
            }
        }
        madeText = made
        return made
    }
    package private(set) var fields: [HTTPField] = []
    /// The method: a static string for the common ones.
    package private(set) var method = ""
    /// Where the target starts in ``bytes``: the method and its space are forwarded as received.
    package private(set) var targetStart = 0
    /// Where the target ends in ``bytes``.
    package private(set) var targetEnd = 0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    package private(set) var minorVersion = 1
    package private(set) var framing = HTTPBodyFraming.none
    package private(set) var connection = ConnectionOptions()
    /// Whether the client asks to switch protocols (`Upgrade` with `Connection: upgrade`).
    package private(set) var isUpgrade = false
    /// The index in ``fields`` of the `Host` field.
    package private(set) var hostField: Int?

    /// Whether the client keeps the connection open after this exchange.
    package var keepAlive: Bool { connection.persists(minorVersion: minorVersion) }

    package var target: Substring { targetText[...] }

    package var isHEAD: Bool { method == "HEAD" }

    package func value(_ field: HTTPField) -> Substring { text[offset(Int(field.valueStart))..<offset(Int(field.valueEnd))] }

    /// The first value of the header called `name` (any case), or `nil`.
    package func header(_ name: String) -> Substring? {
        bytes.withUnsafeReadableBytes { raw in
            fields.first { HTTPBytes.equalsIgnoringCase(raw, Int($0.nameStart), Int($0.nameEnd), name) }.map(value)
        }
    }

    /// Whether `test` holds for the value of any field called `name` (any case).
    package func anyHeader(_ name: String, where test: (Substring) -> Bool) -> Bool {
        for field in fields {
            let named = bytes.withUnsafeReadableBytes { HTTPBytes.equalsIgnoringCase($0, Int(field.nameStart), Int(field.nameEnd), name) }
            if named && test(value(field)) { return true }
        }
        return false
    }

    /// The text is ASCII, so byte offsets are character positions.
    @inline(__always)
    private func offset(_ byteOffset: Int) -> String.Index {
        text.utf8.index(text.utf8.startIndex, offsetBy: byteOffset)
    }

    package var isInterim: Bool { false }
    package static var skipsLeadingEmptyLines: Bool { true }
    package static var headTooLarge: HTTPMessageError { .headTooLarge }

    /// The request line is parsed as soon as it is complete, and refused as the whole head would
    /// be. An HTTP/0.9 client (`GET /` alone) waits for a response to that line: it gets its 400
    /// at once, rather than when a timeout passes while the empty line that ends an HTTP/1 head
    /// never comes.
    package static func checkEarly(startLine: UnsafeRawBufferPointer) throws(HTTPMessageError) {
        _ = try parseRequestLine(startLine)
    }

    /// Parses a complete head (`bytes` ends with the empty line) into `fields`; `toHEAD` is for
    /// responses.
    package init(parsing bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField]) throws(HTTPMessageError) {
        try fill(bytes, fields: &fields)
    }

    /// Parses `bytes` into `previous` when nothing else holds it (the head of the connection's
    /// last exchange, given back by ``MessageReader/recycle(_:empty:)``), into a new head otherwise.
    package static func parse(_ bytes: ByteBuffer, toHEAD: Bool, fields: inout [HTTPField], reusing previous: inout RequestHead?) throws(HTTPMessageError) -> RequestHead {
        if isKnownUniquelyReferenced(&previous), let head = previous {
            previous = nil
            var own = head.fields
            head.fields = []  // its storage is then `own`'s alone, and filled in place
            try head.fill(bytes, fields: &own)
            return head
        }
        return try RequestHead(parsing: bytes, toHEAD: toHEAD, fields: &fields)
    }

    private func fill(_ bytes: ByteBuffer, fields: inout [HTTPField]) throws(HTTPMessageError) {
        self.bytes = bytes
        madeText = nil
        fields.removeAll(keepingCapacity: true)
        fields.reserveCapacity(12)
        let parsed = try bytes.withUnsafeReadableBytes { raw throws(HTTPMessageError) in try Self.parse(raw, fields: &fields) }
        self.fields = fields
        (method, targetStart, targetEnd, minorVersion, framing, connection, isUpgrade, hostField) = parsed.head
        highBytes = parsed.highBytes
        targetText = bytes.withUnsafeReadableBytes { [targetStart, targetEnd] raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[targetStart..<targetEnd]), as: UTF8.self)
        }
    }

    /// Lets go of the received bytes (a slice of a read buffer, which SwiftNIO reuses for the next
    /// read only when nothing else holds it) while the head waits to be parsed into again.
    fileprivate func letGoOfBytes(empty: ByteBuffer) {
        bytes = empty
        madeText = nil
    }

    private typealias Parsed = (
        head: (String, Int, Int, Int, HTTPBodyFraming, ConnectionOptions, Bool, Int?), highBytes: Bool
    )

    /// The parts of the request line at the start of `raw`, which holds at least that line with
    /// its CRLF: `request-line = method SP request-target SP HTTP-version CRLF`.
    private static func parseRequestLine(_ raw: UnsafeRawBufferPointer) throws(HTTPMessageError) -> (
        methodEnd: Int, targetStart: Int, targetEnd: Int, minor: Int, fieldsStart: Int
    ) {
        var index = 0
        while HTTPBytes.isToken(raw[index]) { index += 1 }
        guard index > 0, raw[index] == HTTPBytes.space else { throw .malformed("invalid request line") }
        let methodEnd = index
        index += 1
        let targetStart = index
        while HTTPBytes.isTarget(raw[index]) { index += 1 }
        guard index > targetStart, raw[index] == HTTPBytes.space, isTargetForm(raw, targetStart, index) else {
            throw .malformed("invalid request target")
        }
        let targetEnd = index
        index += 1
        let minor = try HTTPVersion.parse(raw, at: index)
        guard raw[index + 8] == HTTPBytes.cr, raw[index + 9] == HTTPBytes.lf else { throw .malformed("invalid request line") }
        return (methodEnd, targetStart, targetEnd, minor, index + 10)
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, fields: inout [HTTPField]) throws(HTTPMessageError) -> Parsed {
        let (methodEnd, targetStart, targetEnd, minor, fieldsStart) = try parseRequestLine(raw)
        let method = Self.method(raw, end: methodEnd)
        let highBytes = try HTTPFieldSection.parse(raw, from: fieldsStart, into: &fields)

        // framing and connection options (RFC 9112 §6.1-6.3)
        var contentLength: Int? = nil
        var chunked = false
        var connection = ConnectionOptions()
        var hasUpgradeField = false
        var hostField: Int? = nil
        for (position, field) in fields.enumerated() {
            let start = Int(field.nameStart)
            let end = Int(field.nameEnd)
            switch end - start {
            case 4 where HTTPBytes.equalsIgnoringCase(raw, start, end, "host"):
                guard hostField == nil else { throw .malformed("more than one Host header") }
                hostField = position
            case 7 where HTTPBytes.equalsIgnoringCase(raw, start, end, "upgrade"):
                hasUpgradeField = true
            case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "connection"):
                connection.add(raw, field)
            case 14 where HTTPBytes.equalsIgnoringCase(raw, start, end, "content-length"):
                guard contentLength == nil else { throw .malformed("more than one Content-Length") }
                guard !HTTPFieldSection.hasTabAroundValue(raw, field) else { throw .malformed("tab around Content-Length") }
                contentLength = try HTTPFieldSection.contentLength(raw, field)
            case 17 where HTTPBytes.equalsIgnoringCase(raw, start, end, "transfer-encoding"):
                guard !chunked else { throw .malformed("more than one Transfer-Encoding") }
                guard !HTTPFieldSection.hasTabAroundValue(raw, field) else { throw .malformed("tab around Transfer-Encoding") }
                try checkChunkedAlone(raw, field)
                chunked = true
            default:
                break
            }
        }
        if chunked {
            guard contentLength == nil else { throw .malformed("both Content-Length and Transfer-Encoding") }
            guard minor == 1 else { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
        }
        if minor == 1, hostField == nil { throw .malformed("no Host header") }
        let framing: HTTPBodyFraming = chunked ? .chunked : contentLength.map { $0 > 0 ? .length($0) : .none } ?? .none
        let isUpgrade = hasUpgradeField && connection.upgrade
        return ((method, targetStart, targetEnd, minor, framing, connection, isUpgrade, hostField), highBytes)
    }

    /// The target forms served (RFC 9112 §3.2): origin-form (`/path?query`), absolute-form
    /// (`http://host/path`) and the asterisk (`OPTIONS *`). Authority-form (CONNECT) is not.
    private static func isTargetForm(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        switch raw[start] {
        case UInt8(ascii: "/"): return true
        case UInt8(ascii: "*"): return end - start == 1
        default:
            return (end - start > 7 && HTTPBytes.equalsIgnoringCase(raw, start, start + 7, "http://"))
                || (end - start > 8 && HTTPBytes.equalsIgnoringCase(raw, start, start + 8, "https://"))
        }
    }

    /// A request's Transfer-Encoding must be `chunked` alone: chunked as the final coding is
    /// required for framing (400 otherwise), other codings before it are not supported (501).
    private static func checkChunkedAlone(_ raw: UnsafeRawBufferPointer, _ field: HTTPField) throws(HTTPMessageError) {
        if HTTPBytes.equalsIgnoringCase(raw, Int(field.valueStart), Int(field.valueEnd), "chunked") { return }
        var elements = 0
        var lastIsChunked = false
        HTTPFieldSection.forEachElement(raw, field) { start, end in
            elements += 1
            lastIsChunked = HTTPBytes.equalsIgnoringCase(raw, start, end, "chunked")
        }
        // "chunked," and the like: list syntax that parsers read differently
        guard lastIsChunked, elements > 1 else { throw .malformed("Transfer-Encoding is not chunked alone") }
        throw .unsupportedTransferCoding
    }

    /// The method as a string: a constant for the common ones, so routing allocates nothing.
    private static func method(_ raw: UnsafeRawBufferPointer, end: Int) -> String {
        @inline(__always) func starts(_ literal: StaticString) -> Bool {
            let bytes = literal.utf8Start
            for index in 0..<end where raw[index] != bytes[index] { return false }
            return true
        }
        switch end {
        case 3 where starts("GET"): return "GET"
        case 3 where starts("PUT"): return "PUT"
        case 4 where starts("POST"): return "POST"
        case 4 where starts("HEAD"): return "HEAD"
        case 5 where starts("PATCH"): return "PATCH"
        case 6 where starts("DELETE"): return "DELETE"
        case 7 where starts("OPTIONS"): return "OPTIONS"
        default: return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<end]), as: UTF8.self)
        }
    }
}

extension MessageReader where Head == RequestHead {
    /// Takes back the head of an exchange that is over, to parse the connection's next head into
    /// it. Only a head nothing else holds is kept.
    package mutating func recycle(_ head: inout RequestHead?, empty: ByteBuffer) {
        guard isKnownUniquelyReferenced(&head), let kept = head else { return }
        head = nil
        kept.letGoOfBytes(empty: empty)
        spareHead = kept
    }
}
