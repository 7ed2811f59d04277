/// A request target as Fulcrum routes it and forwards it: the authority of an absolute-form
/// target, the path normalised to what the node will act on, and the query as received.
///
/// Routing must see the path the node will see. A node resolves `/public/../admin`,
/// `/public/%2e%2e/admin` and `/public/%2E%2E%2Fadmin` to `/admin`; matched as received, they
/// would take the `/public/` route to `/admin`. So the path is normalised once, before any route
/// sees it, and the normalised path is what the node receives:
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, other
///   percent-encodings keep their byte with upper-case hex digits (RFC 3986 §6.2.2.1-2);
/// - runs of `/` are merged (as nginx's `merge_slashes`: most servers read `//admin` as `/admin`);
/// - dot segments are removed (RFC 3986 §5.2.4); a `..` above the root stays at the root.
///
/// Refused (400), since nodes disagree on what they mean: an encoded `/` (`%2F`, unless
/// ``EncodedSlashes/keep``), an encoded `\` or NUL, a literal `\` (not URI syntax; some servers
/// read it as `/`), a dot segment with path parameters (`..;x`, read as `..` by Java servlet
/// containers), and a malformed percent-encoding.
///
/// The common target needs none of this: it is checked in one pass and its path is a slice of
/// the received text, with nothing allocated.
public struct RequestTarget: Sendable {
    /// `host[:port]` of an absolute-form target (`http://host:port/path`); `nil` for origin-form.
    /// RFC 9112 §3.2.2: it takes the place of the `Host` header.
    public let authority: Substring?
    /// The normalised path (`*` for an asterisk-form target).
    public let path: Substring
    /// The query as received, without its `?`.
    public let query: Substring
    /// Whether the target had a `?` (an empty query is kept as it was sent).
    public let hasQuery: Bool
    /// Whether the node must be sent ``originForm`` instead of the target as received (absolute
    /// form, or a path that normalisation changed).
    public let isRewritten: Bool

    /// What a `%2F` in a path does.
    public enum EncodedSlashes: String, Sendable, CaseIterable {
        /// Refused with 400: a node that decodes it would act on another path than the one routed.
        case refuse
        /// Kept encoded and not taken as a separator, for APIs whose identifiers contain `/`.
        case keep
    }

    public init(parsing target: Substring, encodedSlashes: EncodedSlashes = .refuse) throws(RequestTargetError) {
        var rest = target
        var authority: Substring? = nil
        if let first = target.utf8.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "*") {
            // absolute-form: scheme "://" authority [path-abempty] ["?" query]
            guard let separator = target.utf8.firstRange(of: "://".utf8) else { throw .malformed("invalid request target") }
            let afterScheme = separator.upperBound
            let authorityEnd = target[afterScheme...].utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? target.endIndex
            let found = target[afterScheme..<authorityEnd]
            guard !found.isEmpty else { throw .malformed("empty authority in the request target") }
            // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error
            guard !found.utf8.contains(UInt8(ascii: "@")) else { throw .malformed("userinfo in the request target") }
            authority = found
            rest = target[authorityEnd...]
        }
        let pathEnd = rest.utf8.firstIndex(of: UInt8(ascii: "?")) ?? rest.endIndex
        let received = rest[..<pathEnd]
        // every field is set after the last throw: a throw after a partial initialisation made
        // the initialiser build the value aside and copy it out (retaining its slices again)
        let path: Substring
        var pathChanged = false
        if received.isEmpty {
            path = "/"  // `http://host` and `http://host?q`: the path of an empty path-abempty is `/`
        } else if received == "*" {
            path = received
        } else if let normalized = try Self.normalized(received, encodedSlashes: encodedSlashes) {
            path = normalized
            pathChanged = !normalized.utf8.elementsEqual(received.utf8)  // the slow pass may change nothing
        } else {
            path = received
        }
        self.authority = authority
        self.path = path
        hasQuery = pathEnd != rest.endIndex
        query = hasQuery ? rest[rest.utf8.index(after: pathEnd)...] : rest[rest.endIndex...]
        isRewritten = authority != nil || pathChanged
    }

    /// The host of ``authority`` without its port (a bracketed IPv6 literal keeps its brackets).
    public var authorityHost: Substring? {
        authority.map(Self.hostWithoutPort)
    }

    /// `host` of a `host[:port]` value, as in a `Host` header.
    public static func hostWithoutPort(_ value: Substring) -> Substring {
        if value.hasPrefix("[") {  // [v6]:port
            return value.firstIndex(of: "]").map { value[value.startIndex...$0] } ?? value
        }
        return value.firstIndex(of: ":").map { value[..<$0] } ?? value
    }

    /// The origin-form target sent to the node: the normalised path and the query.
    public var originFormLength: Int { path.utf8.count + (hasQuery ? 1 + query.utf8.count : 0) }

    /// Calls `append` with the parts of the origin-form target, in order.
    public func forEachOriginFormPart(_ append: (Substring) -> Void) {
        append(path)
        if hasQuery {
            append("?")
            append(query)
        }
    }

    // MARK: normalisation

    /// `nil` if `path` is already normal (the usual case: nothing allocated), otherwise the normal path.
    static func normalized(_ path: Substring, encodedSlashes: EncodedSlashes) throws(RequestTargetError) -> Substring? {
        var path = path
        var refusal: RequestTargetError? = nil
        // a native string's bytes are contiguous; anything else is copied once
        let result: String? = path.withUTF8 { bytes in
            do throws(RequestTargetError) {
                return try normalized(bytes, encodedSlashes: encodedSlashes)
            } catch {
                refusal = error
                return nil
            }
        }
        if let refusal { throw refusal }
        return result.map { Substring($0) }
    }

    /// `nil` when `bytes` is already a normal path; the normal path otherwise.
    private static func normalized(_ bytes: UnsafeBufferPointer<UInt8>, encodedSlashes: EncodedSlashes) throws(RequestTargetError) -> String? {
        guard try needsNormalizing(bytes) else { return nil }
        // 1. split into segments, decoding and checking percent-encodings
        var segments: [[UInt8]] = []
        var segment: [UInt8] = []
        func endSegment() throws(RequestTargetError) {
            if segment.first == UInt8(ascii: "."), let semicolon = segment.firstIndex(of: UInt8(ascii: ";")),
                segment[..<semicolon].allSatisfy({ $0 == UInt8(ascii: ".") }), semicolon <= 2
            {
                throw .malformed("dot segment with parameters in the path")
            }
            segments.append(segment)
            segment = []
        }
        var index = 1
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "/"):
                try endSegment()
            case UInt8(ascii: "\\"):
                throw .malformed("backslash in the path")
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = HTTPSyntax.hexDigitValue(bytes[index + 1]), let low = HTTPSyntax.hexDigitValue(bytes[index + 2]) else {
                    throw .malformed("invalid percent-encoding in the path")
                }
                let decoded = high << 4 | low
                index += 2
                if isUnreserved(decoded) {
                    segment.append(decoded)
                } else if decoded == UInt8(ascii: "/") && encodedSlashes == .refuse {
                    throw .malformed("encoded slash in the path")
                } else if decoded == UInt8(ascii: "\\") {
                    throw .malformed("encoded backslash in the path")
                } else if decoded == 0 {
                    throw .malformed("encoded NUL in the path")
                } else {
                    segment.append(UInt8(ascii: "%"))
                    segment.append(upperHex[Int(high)])
                    segment.append(upperHex[Int(low)])
                }
            default:
                segment.append(byte)
            }
            index += 1
        }
        try endSegment()
        // 2. merge slashes and remove dot segments (RFC 3986 §5.2.4, on the list of segments)
        var output: [[UInt8]] = []
        for (position, segment) in segments.enumerated() {
            let isLast = position == segments.count - 1
            if segment == [UInt8(ascii: ".")] || segment == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                if segment.count == 2, !output.isEmpty { output.removeLast() }
                if isLast { output.append([]) }  // `/a/.` and `/a/b/..` end with a slash
            } else if segment.isEmpty && !isLast {
                continue  // `//`
            } else {
                output.append(segment)
            }
        }
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count)
        for segment in output {
            text.append(UInt8(ascii: "/"))
            text.append(contentsOf: segment)
        }
        if text.isEmpty { text = [UInt8(ascii: "/")] }
        return String(decoding: text, as: UTF8.self)
    }

    /// Whether a path needs the slow pass: a `%`, a `\`, an empty segment (`//`) before the last,
    /// or a segment that starts with a dot and is made of one or two dots (with or without parameters).
    private static func needsNormalizing(_ bytes: UnsafeBufferPointer<UInt8>) throws(RequestTargetError) -> Bool {
        guard bytes.first == UInt8(ascii: "/") else { throw .malformed("invalid request target") }
        var segmentStart = 1
        var index = 1
        while index <= bytes.count {
            let byte = index < bytes.count ? bytes[index] : UInt8(ascii: "/")
            if byte == UInt8(ascii: "%") || byte == UInt8(ascii: "\\") { return true }
            if byte == UInt8(ascii: "/") {
                let length = index - segmentStart
                if length == 0 && index < bytes.count { return true }
                if length > 0, bytes[segmentStart] == UInt8(ascii: ".") {
                    // ".", "..", ".;x", "..;x"
                    if length == 1 || bytes[segmentStart + 1] == UInt8(ascii: ".") || bytes[segmentStart + 1] == UInt8(ascii: ";") { return true }
                }
                segmentStart = index + 1
            }
            index += 1
        }
        return false
    }

    private static let upperHex = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 §2.3: `ALPHA / DIGIT / "-" / "." / "_" / "~"`.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): return true
        default: return false
        }
    }
}

/// Why a request target is refused (400).
public enum RequestTargetError: Error, Equatable, Sendable {
    case malformed(String)

    public var reason: String {
        switch self {
        case .malformed(let reason): return reason
        }
    }
}
