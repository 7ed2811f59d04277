/// The `Location` a plaintext listener with `redirect_to_https` answers every request with (308):
/// the same host, path and query over HTTPS on the given port.
enum HTTPSRedirect {
    /// `https://host[:port]path[?query]`, or `nil` when the host is missing or is not a plain
    /// host name or IP address: it is written into a header and followed by browsers, so a host
    /// with anything else (`@`, `/`, spaces, control bytes) would redirect to where an attacker
    /// chose, and is answered with 400 instead.
    static func location(host: Substring?, path: Substring, query: Substring, port: Int) -> String? {
        guard let host, !host.isEmpty, isPlainHost(host) else { return nil }
        var location = "https://"
        location += host
        if port != 443 { location += ":\(port)" }
        location += path.isEmpty ? "/" : path
        if !query.isEmpty { location += "?" + query }
        return location
    }

    private static func isPlainHost(_ host: Substring) -> Bool {
        let bytes = host.utf8
        if bytes.first == UInt8(ascii: "[") {
            // an IPv6 literal: hex digits, colons and dots (an embedded IPv4 address) in brackets
            guard bytes.count > 2, bytes.last == UInt8(ascii: "]") else { return false }
            return bytes.dropFirst().dropLast().allSatisfy { byte in
                byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") || isHexDigit(byte)
            }
        }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
}
