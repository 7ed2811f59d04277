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

    /// Whether `bytes[range]` equals `lowercaseName` ignoring ASCII case.
    @inline(__always)
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercaseName: StaticString) -> Bool {
        guard end - start == lowercaseName.utf8CodeUnitCount else { return false }
        let name = lowercaseName.utf8Start
        for offset in 0..<(end - start) where lowercased(bytes[start + offset]) != name[offset] {
            return false
        }
        return true
    }

    /// Whether `bytes[range]` equals `name` ignoring ASCII case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: some StringProtocol) -> Bool {
        guard end - start == name.utf8.count else { return false }
        // native strings are contiguous: compare through a pointer rather than the UTF-8 view's iterator
        if let equal = name.utf8.withContiguousStorageIfAvailable({ equalsIgnoringCase(bytes, start, $0) }) { return equal }
        var index = start
        for byte in name.utf8 {
            guard lowercased(bytes[index]) == lowercased(byte) else { return false }
            index += 1
        }
        return true
    }

    /// Whether `bytes[start...]` begins with `name` ignoring ASCII case (the lengths were compared).
    @inline(__always)
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        for offset in 0..<name.count where lowercased(bytes[start + offset]) != lowercased(name[offset]) { return false }
        return true
    }
}
