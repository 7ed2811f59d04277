/// The `HTTP-version` of a start line (RFC 9112 §2.3): `HTTP/1.0` and `HTTP/1.1` are served.
enum HTTPVersion {
    /// The minor version of the 8 bytes at `index`; 505 for another well-formed version.
    package static func parse(_ raw: UnsafeRawBufferPointer, at index: Int) throws(HTTPMessageError) -> Int {
        guard raw.count - index >= 8, raw[index] == UInt8(ascii: "H"), raw[index + 1] == UInt8(ascii: "T"),
            raw[index + 2] == UInt8(ascii: "T"), raw[index + 3] == UInt8(ascii: "P"), raw[index + 4] == UInt8(ascii: "/"),
            raw[index + 6] == UInt8(ascii: ".")
        else { throw .malformed("invalid HTTP version") }
        let major = raw[index + 5] &- UInt8(ascii: "0")
        let minor = raw[index + 7] &- UInt8(ascii: "0")
        guard major < 10, minor < 10 else { throw .malformed("invalid HTTP version") }
        guard major == 1, minor <= 1 else { throw .unsupportedVersion }
        return Int(minor)
    }
}
