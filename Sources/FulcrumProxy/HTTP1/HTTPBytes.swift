import FulcrumCore

/// Byte classes and comparisons of HTTP/1.1 syntax (RFC 9110 §5.6, RFC 9112), on raw bytes.
enum HTTPBytes {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")

    /// `tchar`: the bytes of methods and header names.
    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool { HTTPSyntax.isTokenByte(byte) }

    /// A byte allowed in a field value or reason phrase: HTAB, SP, VCHAR and obs-text.
    @inline(__always)
    static func isFieldValue(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }

    /// A byte allowed in a request target: visible ASCII (anything else must be percent-encoded).
    @inline(__always)
    static func isTarget(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case.
    @inline(__always)
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: StaticString) -> Bool {
        equalsIgnoringCase(bytes, start, end, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: String) -> Bool {
        guard end - start == name.utf8.count else { return false }
        return withBytes(of: name) { equalsIgnoringCase(bytes, start, end, $0) }
    }

    /// Calls `body` with the UTF-8 bytes of `text`: in place for a native string, copied for a
    /// bridged one (which does not happen on Linux).
    @inline(__always)
    static func withBytes<Result>(of text: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(text.utf8).withUnsafeBytes(body)
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case: the one comparison loop.
    @inline(__always)
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: UnsafeRawBufferPointer) -> Bool {
        guard end - start == name.count else { return false }
        for offset in 0..<name.count where lowercased(bytes[start + offset]) != lowercased(name[offset]) { return false }
        return true
    }
}
