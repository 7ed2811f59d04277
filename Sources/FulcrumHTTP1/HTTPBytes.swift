import FulcrumCore

/// Byte classes and comparisons of HTTP/1.1 syntax (RFC 9110 §5.6, RFC 9112), on raw bytes.
package enum HTTPBytes {
    package static let cr = UInt8(ascii: "\r")
    package static let lf = UInt8(ascii: "\n")
    package static let space = UInt8(ascii: " ")
    package static let tab = UInt8(ascii: "\t")
    package static let colon = UInt8(ascii: ":")

    /// `tchar`: the bytes of methods and header names.
    @inline(__always)
    package static func isToken(_ byte: UInt8) -> Bool { HTTPSyntax.isTokenByte(byte) }

    /// A byte allowed in a field value or reason phrase: HTAB, SP, VCHAR and obs-text.
    @inline(__always)
    package static func isFieldValue(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }

    /// A byte allowed in a request target: visible ASCII (anything else must be percent-encoded).
    @inline(__always)
    package static func isTarget(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }

    /// The offset of the first `target` byte in `bytes[from...]`, or `nil`. Eight bytes at a time:
    /// a head is searched for its line ends once per read, so this runs over every byte received.
    package static func firstIndex(of target: UInt8, in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var index = from
        let pattern = UInt64(target) &* ones
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ pattern
            // the lowest high bit set marks the first zero byte exactly (borrows only reach bytes above it)
            let zeroBytes = (word &- ones) & ~word & highBits
            if zeroBytes != 0 { return index + zeroBytes.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] == target { return index }
            index += 1
        }
        return nil
    }

    /// The offset of the first byte from `from` on that is not plain field-value text (HTAB, or
    /// a byte ``isFieldValue(_:)`` refuses: CR and the other controls, DEL), or `bytes.count`. Sets `sawHighBytes` when bytes above
    /// 0x7F were passed. Eight bytes at a time: header values are most of a head's bytes.
    package static func endOfPlainText(_ bytes: UnsafeRawBufferPointer, from: Int, sawHighBytes: inout Bool) -> Int {
        var index = from
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let delBytes = word ^ (0x7F &* ones)
            // a byte below 0x20, or a DEL: exact as a yes/no, which is all that is asked here
            let special = ((word &- 0x20 &* ones) & ~word | (delBytes &- ones) & ~delBytes) & highBits
            if special != 0 { break }
            if word & highBits != 0 { sawHighBytes = true }
            index += 8
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == tab || !isFieldValue(byte) { return index }
            if byte > 0x7F { sawHighBytes = true }
            index += 1
        }
        return index
    }

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    @inline(__always)
    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case.
    @inline(__always)
    package static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: StaticString) -> Bool {
        equalsIgnoringCase(bytes, start, end, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case. Inlined, so that the
    /// length test that rejects most fields costs no call (a head's fields are each compared
    /// with the request ID header's name).
    @inline(__always)
    package static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: String) -> Bool {
        guard end - start == name.utf8.count else { return false }
        return withBytes(of: name) { equalsIgnoringCase(bytes, start, end, $0) }
    }

    /// Calls `body` with the UTF-8 bytes of `text`: in place for a native string, copied for a
    /// bridged one (which does not happen on Linux).
    @inline(__always)
    package static func withBytes<Result>(of text: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(text.utf8).withUnsafeBytes(body)
    }

    /// Whether `bytes[start..<end]` equals `name` ignoring ASCII case: the one comparison loop.
    @inline(__always)
    package static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ name: UnsafeRawBufferPointer) -> Bool {
        guard end - start == name.count else { return false }
        for offset in 0..<name.count where lowercased(bytes[start + offset]) != lowercased(name[offset]) { return false }
        return true
    }
}
