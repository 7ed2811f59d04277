/// `routes[].static`: the route serves files from a directory instead of proxying. The request
/// path (after the route's `strip_prefix`) names a file under ``root``; nothing outside the root
/// can be reached (see ``StaticFiles/relativePath(_:)``).
public struct StaticFiles: Sendable, Equatable {
    /// The directory served (relative to the working directory of `fulcrum`, or absolute).
    public var root: String
    /// The file served for a directory; `nil`: directories are 404.
    public var index: String?

    public init(root: String, index: String? = "index.html") {
        self.root = root
        self.index = index
    }

    /// Why a path cannot name a file, for the 400.
    public enum PathRefusal: Error, Sendable, Equatable {
        case malformedEscape
        case forbiddenByte
        case parentSegment

        public var reason: String {
            switch self {
            case .malformedEscape: return "the path has a malformed percent escape"
            case .forbiddenByte: return "the path has a NUL, a backslash or a control character"
            case .parentSegment: return "the path has a '..' segment"
            }
        }
    }

    /// The file path under the root that a request path names: every percent escape decoded,
    /// then refused if a byte could change what a file system makes of it (NUL ends a C string,
    /// a backslash separates directories elsewhere, control characters) or a `..` segment could
    /// climb out of the root. The request path was normalised already; this is the line that
    /// holds even for an encoding the normaliser leaves alone. Symbolic links are the file
    /// server's to check (it resolves the path and requires it to stay under the root).
    public static func relativePath(_ path: Substring) -> Result<String, PathRefusal> {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        var iterator = path.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(HTTPSyntax.hexDigitValue), let low = iterator.next().flatMap(HTTPSyntax.hexDigitValue) else {
                    return .failure(.malformedEscape)
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) { return .failure(.forbiddenByte) }
        let segments = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        if segments.contains(where: { $0.elementsEqual("..".utf8) }) { return .failure(.parentSegment) }
        let kept = segments.filter { !$0.elementsEqual(".".utf8) }
        return .success(kept.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/"))
    }

    /// The media type of a file, by its extension.
    public static func mediaType(of path: String) -> String {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return "application/octet-stream" }
        return mediaTypes[path[path.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    private static let mediaTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "txt": "text/plain; charset=utf-8", "xml": "application/xml", "csv": "text/csv; charset=utf-8", "md": "text/markdown; charset=utf-8",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "avif": "image/avif", "ico": "image/x-icon", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "pdf": "application/pdf", "wasm": "application/wasm", "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg",
        "map": "application/json", "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
    ]

    /// A file's entity tag: its size and modification time (what changes when it is rewritten).
    public static func entityTag(size: Int64, modified: Int64) -> String {
        "\"\(String(size, radix: 16))-\(String(modified, radix: 16))\""
    }

    /// Whether a conditional GET may be answered 304: `If-None-Match` when present (weak
    /// comparison), otherwise `If-Modified-Since`.
    public static func notModified(ifNoneMatch: Substring?, ifModifiedSince: Substring?, tag: String, modified: Int64) -> Bool {
        if let ifNoneMatch {
            return ifNoneMatch.split(separator: ",").contains { candidate in
                var text = candidate.drop { $0 == " " }
                while text.last == " " { text = text.dropLast() }
                if text.hasPrefix("W/") { text = text.dropFirst(2) }
                return text == "*" || text == tag[...]
            }
        }
        if let ifModifiedSince, let since = HTTPDate.parse(ifModifiedSince) { return modified <= since }
        return false
    }

    /// What a `Range` field asks of a file of `size` bytes.
    public enum RangeRequest: Sendable, Equatable {
        /// The whole file (no range, or a form served whole: several ranges, other units).
        case whole
        /// These bytes (inclusive).
        case part(ClosedRange<Int64>)
        /// No byte of the range is in the file: 416.
        case unsatisfiable
    }

    /// Parses `bytes=FIRST-LAST`, `bytes=FIRST-` and `bytes=-SUFFIX`. Several ranges are served
    /// whole (RFC 9110 allows it, and it spares a multipart body).
    public static func range(_ field: Substring?, size: Int64) -> RangeRequest {
        guard let field, field.hasPrefix("bytes="), !field.contains(",") else { return .whole }
        let spec = field.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        func number(_ text: Substring) -> Int64? {
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return Int64(text)
        }
        if first.isEmpty {
            guard let suffix = number(last) else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - suffix)...(size - 1))
        }
        guard let start = number(first) else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .part(start...(size - 1)) }
        guard let end = number(last), end >= start else { return .whole }
        return .part(start...min(end, size - 1))
    }
}

/// HTTP dates (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) from and to seconds since 1970,
/// by calendar arithmetic (no time zone database, no Foundation).
public enum HTTPDate {
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func format(_ seconds: Int64) -> String {
        let dayNumber = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - dayNumber * 86_400
        let (year, month, day) = civil(fromDays: dayNumber)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let weekday = days[Int(((dayNumber % 7) + 7) % 7)]
        return "\(weekday), \(two(day)) \(months[Int(month) - 1]) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Parses an IMF-fixdate; `nil` for anything else.
    public static func parse(_ text: Substring) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int64(parts[1]), let monthIndex = months.firstIndex(where: { $0 == parts[2] }),
            let year = Int64(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":")
        guard time.count == 3, let hour = Int64(time[0]), let minute = Int64(time[1]), let second = Int64(time[2]),
            (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        return days(fromCivil: year, Int64(monthIndex + 1), day) * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// Howard Hinnant's `civil_from_days`.
    private static func civil(fromDays z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Howard Hinnant's `days_from_civil`.
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
