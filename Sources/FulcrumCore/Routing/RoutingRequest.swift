/// What the router needs to know about a request. The data plane adapts its own request type to
/// this protocol without copying: every accessor returns a slice of the request's storage.
public protocol RoutingRequest {
    /// The method, upper case as sent (`GET`, `POST`...).
    var method: String { get }
    /// The path of the request target, without the query string.
    var path: Substring { get }
    /// The raw query string (after `?`), empty when absent.
    var query: Substring { get }
    /// The Host header without its port, or `nil`.
    var host: Substring? { get }
    /// The client's IP address as text.
    var clientIP: Substring { get }
    /// The first value of the header called `name` (compared case-insensitively), or `nil`.
    func header(_ name: String) -> Substring?
}

extension RoutingRequest {
    /// The raw value of the first query parameter called `name`, or `nil`.
    public func queryParameter(_ name: String) -> Substring? {
        QueryString.value(of: name, in: query)
    }

    /// The value of the cookie called `name` from the Cookie header, or `nil`.
    public func cookie(_ name: String) -> Substring? {
        guard let header = header("cookie") else { return nil }
        return CookieHeader.value(of: name, in: header)
    }
}

/// Scanning of `a=1&b=2` query strings in place.
public enum QueryString {
    /// The raw (still percent-encoded) value of the first parameter `name`; `""` for `?name` without `=`.
    public static func value(of name: String, in query: Substring) -> Substring? {
        var rest = query[...]
        while !rest.isEmpty {
            let end = rest.firstIndex(of: "&") ?? rest.endIndex
            let pair = rest[..<end]
            let equals = pair.firstIndex(of: "=") ?? pair.endIndex
            if pair[..<equals] == name {
                return equals == pair.endIndex ? pair[pair.endIndex...] : pair[pair.index(after: equals)...]
            }
            rest = end == rest.endIndex ? rest[rest.endIndex...] : rest[rest.index(after: end)...]
        }
        return nil
    }

    /// Whether the percent-encoded `raw` value decodes (`%XX`, `+` as space) to `expected`, without allocating.
    public static func decodedValue(_ raw: Substring, equals expected: String) -> Bool {
        var source = raw.utf8.makeIterator()
        var target = expected.utf8.makeIterator()
        while let byte = source.next() {
            var decoded = byte
            if byte == UInt8(ascii: "+") {
                decoded = UInt8(ascii: " ")
            } else if byte == UInt8(ascii: "%") {
                guard let high = source.next().flatMap(HTTPSyntax.hexDigitValue), let low = source.next().flatMap(HTTPSyntax.hexDigitValue) else { return false }
                decoded = high << 4 | low
            }
            guard target.next() == decoded else { return false }
        }
        return target.next() == nil
    }

}

/// Scanning of `a=1; b=2` Cookie headers in place.
public enum CookieHeader {
    public static func value(of name: String, in header: Substring) -> Substring? {
        for part in header.split(separator: ";", omittingEmptySubsequences: true) {
            let trimmed = part.drop { $0 == " " || $0 == "\t" }
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            if trimmed[..<equals] == name {
                var value = trimmed[trimmed.index(after: equals)...]
                while value.last == " " || value.last == "\t" { value = value.dropLast() }
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                return value
            }
        }
        return nil
    }
}
