/// One header field of a head, as byte offsets into the head: the name, and the value without
/// surrounding whitespace.
package struct HTTPField {
    package var nameStart: Int32
    package var nameEnd: Int32
    package var valueStart: Int32
    package var valueEnd: Int32
}

/// Finds where a head ends and splits its field lines, strictly: every line ends with CRLF, field
/// names are tokens directly followed by a colon, values hold no control characters, and obsolete
/// line folding is refused (RFC 9112 §2.2, §5).
package enum HTTPFieldSection {
    /// The most bytes a head may have.
    package static let maximumHeadBytes = 64 * 1024
    /// The most field lines a head may have.
    package static let maximumFields = 256

    /// The offset just past the empty line ending the head in `bytes`, or `nil` when it has not
    /// arrived yet. `from` is where the previous search stopped. Throws on a bare LF.
    package static func endOfHead(_ bytes: UnsafeRawBufferPointer, from: Int) throws(HTTPMessageError) -> Int? {
        var index = from
        while let lf = HTTPBytes.firstIndex(of: HTTPBytes.lf, in: bytes, from: index) {
            guard lf > 0, bytes[lf - 1] == HTTPBytes.cr else { throw .malformed("a line ends with LF alone") }
            if lf >= 3, bytes[lf - 2] == HTTPBytes.lf { return lf + 1 }
            index = lf + 1
        }
        return nil
    }

    /// Splits the field lines from `start` (the first byte after the start line) to the empty
    /// line. `bytes` must end with the empty line (see ``endOfHead(_:from:)``). Returns whether a
    /// value holds bytes above 0x7F.
    package static func parse(_ bytes: UnsafeRawBufferPointer, from start: Int, into fields: inout [HTTPField]) throws(HTTPMessageError) -> Bool {
        var index = start
        var highBytes = false
        while true {
            let first = bytes[index]
            if first == HTTPBytes.cr {
                guard bytes[index + 1] == HTTPBytes.lf, index + 2 == bytes.count else { throw .malformed("CR without LF") }
                return highBytes
            }
            if first == HTTPBytes.space || first == HTTPBytes.tab { throw .malformed("obsolete line folding in a header") }
            let nameStart = index
            while HTTPBytes.isToken(bytes[index]) { index += 1 }
            guard index > nameStart, bytes[index] == HTTPBytes.colon else {
                if index > nameStart, bytes[index] == HTTPBytes.space || bytes[index] == HTTPBytes.tab {
                    throw .malformed("whitespace between a header name and its colon")
                }
                throw .malformed("invalid header name")
            }
            let nameEnd = index
            index += 1
            while bytes[index] == HTTPBytes.space || bytes[index] == HTTPBytes.tab { index += 1 }
            let valueStart = index
            index = try endOfValue(bytes, from: index, sawHighBytes: &highBytes, invalid: .malformed("invalid character in a header value"))
            var valueEnd = index
            while valueEnd > valueStart, bytes[valueEnd - 1] == HTTPBytes.space || bytes[valueEnd - 1] == HTTPBytes.tab { valueEnd -= 1 }
            guard bytes[index + 1] == HTTPBytes.lf else { throw .malformed("CR without LF") }
            index += 2
            guard fields.count < maximumFields else { throw .tooManyFields }
            fields.append(HTTPField(nameStart: Int32(nameStart), nameEnd: Int32(nameEnd), valueStart: Int32(valueStart), valueEnd: Int32(valueEnd)))
        }
    }

    /// The offset of the CR that ends a header value or a reason phrase starting at `from`; throws
    /// `invalid` at a byte neither may hold (RFC 9110 §5.5: HTAB, SP, VCHAR, obs-text). `bytes`
    /// must hold that CR (a complete head does). Sets `sawHighBytes` when bytes above 0x7F were
    /// passed.
    package static func endOfValue(
        _ bytes: UnsafeRawBufferPointer, from: Int, sawHighBytes: inout Bool, invalid: HTTPMessageError
    ) throws(HTTPMessageError) -> Int {
        var index = from
        while true {
            index = HTTPBytes.endOfPlainText(bytes, from: index, sawHighBytes: &sawHighBytes)
            if bytes[index] == HTTPBytes.cr { return index }
            guard bytes[index] == HTTPBytes.tab else { throw invalid }
            index += 1
        }
    }

    /// Whether whitespace around the value holds a tab. Framing fields with one are refused, as
    /// llhttp does: intermediaries disagree about such values, which is what smuggling feeds on.
    package static func hasTabAroundValue(_ bytes: UnsafeRawBufferPointer, _ field: HTTPField) -> Bool {
        var index = Int(field.nameEnd) + 1
        while index < Int(field.valueStart) {
            if bytes[index] == HTTPBytes.tab { return true }
            index += 1
        }
        index = Int(field.valueEnd)
        while bytes[index] != HTTPBytes.cr {
            if bytes[index] == HTTPBytes.tab { return true }
            index += 1
        }
        return false
    }

    /// Parses a `Content-Length` value: digits only, at most 18 of them.
    package static func contentLength(_ bytes: UnsafeRawBufferPointer, _ field: HTTPField) throws(HTTPMessageError) -> Int {
        let start = Int(field.valueStart)
        let end = Int(field.valueEnd)
        guard end > start, end - start <= 18 else { throw .malformed("invalid Content-Length") }
        var value = 0
        for index in start..<end {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { throw .malformed("invalid Content-Length") }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// Whether a list value has an empty element (`chunked,`, `, chunked`, `a,,b`) or none at all.
    /// RFC 9110 §5.6.1 has recipients skip empty elements, but parsers differ on them in framing
    /// fields (llhttp reads `chunked,` as not chunked), so Fulcrum refuses such a value there.
    package static func hasEmptyElement(_ bytes: UnsafeRawBufferPointer, _ field: HTTPField) -> Bool {
        var elements = 0
        forEachElement(bytes, field) { _, _ in elements += 1 }
        var commas = 0
        for index in Int(field.valueStart)..<Int(field.valueEnd) where bytes[index] == UInt8(ascii: ",") { commas += 1 }
        return elements != commas + 1
    }

    /// Calls `body` with each comma-separated element of a field value, without surrounding
    /// whitespace and skipping empty elements (RFC 9110 §5.6.1).
    package static func forEachElement(_ bytes: UnsafeRawBufferPointer, _ field: HTTPField, _ body: (Int, Int) -> Void) {
        var index = Int(field.valueStart)
        let end = Int(field.valueEnd)
        while index < end {
            while index < end, bytes[index] == HTTPBytes.space || bytes[index] == HTTPBytes.tab || bytes[index] == UInt8(ascii: ",") {
                index += 1
            }
            let start = index
            var last = index
            while index < end, bytes[index] != UInt8(ascii: ",") {
                if bytes[index] != HTTPBytes.space && bytes[index] != HTTPBytes.tab { last = index + 1 }
                index += 1
            }
            if last > start { body(start, last) }
        }
    }
}
