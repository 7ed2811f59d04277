/// Character-level checks for names that end up in HTTP messages or host lookups.
public enum HTTPSyntax {
    /// An RFC 9110 token (header names, methods, cookie names).
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// A `tchar`: a byte of a token (RFC 9110 §5.6.2: `!#$%&'*+-.^_`|~`, digits, letters).
    /// One bit per ASCII byte, so that the data plane's test for every byte of a header name is a
    /// shift, not a chain of comparisons. Inlinable for the same reason.
    @inlinable
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        let bits: UInt64 = byte < 64 ? 0x03FF_6CFA_0000_0000 : 0x57FF_FFFF_C7FF_FFFE
        return byte < 128 && (bits >> (byte & 63)) & 1 == 1
    }

    /// Names of services, nodes and stored certificates: letters, digits, `-`, `_`, `.`.
    public static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return true
            default: return false
            }
        }
    }

    /// An IPv4/IPv6 literal or a DNS host name.
    static func isHost(_ text: String) -> Bool {
        if text.contains(":") {  // IPv6 literal
            return text.utf8.allSatisfy { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || isHexDigit($0) }
        }
        return !text.isEmpty && text.utf8.count <= 253 && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.utf8.allSatisfy { byte in
                isHexDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
        }
    }

    /// An IPv4 or IPv6 literal (no prefix length).
    public static func isIPAddress(_ text: String) -> Bool {
        !text.contains("/") && AddressRange(parsing: text) != nil
    }

    /// A host name, optionally starting with `*.` to match subdomains.
    static func isHostPattern(_ text: String) -> Bool {
        text.hasPrefix("*.") ? isHost(String(text.dropFirst(2))) : isHost(text)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    /// The value of a hexadecimal digit (either case), for percent-decoding and JSON escapes.
    @inlinable
    public static func hexDigitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
