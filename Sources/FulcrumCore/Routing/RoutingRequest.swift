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
    /// Whether `test` holds for the value of any field called `name` (compared
    /// case-insensitively): access rules look at every copy of a field, since a client can send
    /// two where a check reads one.
    func anyHeader(_ name: String, where test: (Substring) -> Bool) -> Bool
}

extension RoutingRequest {
    /// The raw value of the first query parameter called `name`, or `nil`.
    public func queryParameter(_ name: String) -> Substring? {
        QueryString.value(of: name, in: query)
    }

    /// Whether `test` holds for any cookie called `name`, in any `Cookie` field.
    public func anyCookie(_ name: String, where test: (Substring) -> Bool) -> Bool {
        anyHeader("cookie") { header in CookieHeader.anyValue(of: name, in: header, where: test) }
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

    /// Whether `test` holds for the decoded value of any parameter whose decoded name is `name`.
    /// Names are compared without decoding them into a string; a value that is tested is decoded
    /// (which allocates, so only access rules on the query use this).
    public static func anyDecodedValue(of name: String, in query: Substring, where test: (Substring) -> Bool) -> Bool {
        var rest = query[...]
        while !rest.isEmpty {
            let end = rest.firstIndex(of: "&") ?? rest.endIndex
            let pair = rest[..<end]
            let equals = pair.firstIndex(of: "=") ?? pair.endIndex
            if decodedValue(pair[..<equals], equals: name) {
                let value = equals == pair.endIndex ? "" : decoded(pair[pair.index(after: equals)...])
                if test(value[...]) { return true }
            }
            rest = end == rest.endIndex ? rest[rest.endIndex...] : rest[rest.index(after: end)...]
        }
        return false
    }

    /// `raw` percent-decoded, `+` as a space; a malformed escape is kept as it is.
    public static func decoded(_ raw: Substring) -> String {
        guard raw.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(raw) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.utf8.count)
        var iterator = raw.utf8.makeIterator()
        var pending: [UInt8] = []
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                pending = [byte]
                guard let high = iterator.next() else { bytes += pending; break }
                pending.append(high)
                guard let low = iterator.next() else { bytes += pending; break }
                pending.append(low)
                if let h = HTTPSyntax.hexDigitValue(high), let l = HTTPSyntax.hexDigitValue(low) { bytes.append(h << 4 | l) } else { bytes += pending }
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
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
    /// Whether `test` holds for the value of any cookie called `name` in `header`.
    public static func anyValue(of name: String, in header: Substring, where test: (Substring) -> Bool) -> Bool {
        for part in header.split(separator: ";", omittingEmptySubsequences: true) {
            let trimmed = part.drop { $0 == " " || $0 == "\t" }
            guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
            var value = trimmed[trimmed.index(after: equals)...]
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            if test(value) { return true }
        }
        return false
    }

    /// The value of the first cookie called `name` in `header`, or `nil`.
    public static func value(of name: String, in header: Substring) -> Substring? {
        var found: Substring? = nil
        _ = anyValue(of: name, in: header) { value in
            found = value
            return true
        }
        return found
    }
}
