/// A configured value with variables (`$path`, `$host`, `$1`...), split into its parts when the
/// configuration is parsed, so that a request only appends the parts: no parsing, no lookup by
/// name. An unknown variable is a configuration error, never an empty string at run time.
///
/// Variables (also written `${name}`, to run into the text that follows; `$$` is a `$`):
/// - `$path`: the request path as the node is sent it (normalised, after `strip_prefix` and
///   `rewrite`), starting with `/`;
/// - `$query`: the query string as received, without its `?` (empty when there is none);
/// - `$path_and_query`: `$path`, then `?` and the query when the request has one;
/// - `$host`: the host the client asked for, without its port;
/// - `$client_ip`: the client's address (see `trusted_proxies`);
/// - `$1` ... `$9`: the groups of the regular expression of the value's `rewrite` or of its
///   route's `path_regex`, where the value belongs to one.
public struct ValueTemplate: Sendable, Equatable, CustomStringConvertible {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case path
        case query
        case pathAndQuery
        case host
        case clientIP
        /// A group of a regular expression, from 1.
        case capture(Int)
    }

    /// The names of the variables, as written after `$`.
    public static let variableNames: [(String, Part)] = [
        ("path", .path), ("query", .query), ("path_and_query", .pathAndQuery), ("host", .host), ("client_ip", .clientIP),
    ]

    /// The value as configured.
    public let source: String
    public let parts: [Part]

    public var description: String { source }

    /// The text of a value without variables.
    public var literal: String? {
        switch parts.count {
        case 0: return ""
        case 1: if case .literal(let text) = parts[0] { return text } else { return nil }
        default: return nil
        }
    }

    /// The largest group number used, 0 for none.
    public var highestCapture: Int {
        parts.reduce(0) { highest, part in if case .capture(let group) = part { max(highest, group) } else { highest } }
    }

    /// Splits `source` into literal text and variables.
    ///
    /// - Throws: the reason, naming the unknown variable (with the one meant when it is close)
    ///   or the group beyond `captures`.
    public init(parsing source: String, captures: Int) throws(ConfigValueError) {
        self.source = source
        var parts: [Part] = []
        var literal = ""
        let bytes = Array(source.utf8)
        var index = 0
        func flush() {
            if !literal.isEmpty { parts.append(.literal(literal)) }
            literal = ""
        }
        func isNameByte(_ byte: UInt8) -> Bool {
            (0x61...0x7A).contains(byte) || byte == UInt8(ascii: "_") || (0x30...0x39).contains(byte)
        }
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "$") else {
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "$") { index += 1 }
                literal += String(decoding: bytes[start..<index], as: UTF8.self)
                continue
            }
            index += 1
            guard index < bytes.count else { throw ConfigValueError("a '$' ends the value (write '$$' for a dollar sign)") }
            if bytes[index] == UInt8(ascii: "$") {
                literal += "$"
                index += 1
                continue
            }
            let braced = bytes[index] == UInt8(ascii: "{")
            if braced { index += 1 }
            let start = index
            if !braced, (0x31...0x39).contains(bytes[index]) {
                index += 1  // $1 ... $9: one digit, so that "$10" is group 1 and a "0"
            } else {
                while index < bytes.count, isNameByte(bytes[index]) { index += 1 }
            }
            let name = String(decoding: bytes[start..<index], as: UTF8.self)
            if braced {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "}") else {
                    throw ConfigValueError("'${\(name)' is not closed with '}'")
                }
                index += 1
            }
            flush()
            if let group = Int(name), (1...9).contains(group) {
                guard group <= captures else {
                    throw ConfigValueError(
                        captures == 0
                            ? "'$\(group)' refers to a group of a regular expression, and this value has none (variables: \(Self.namesList))"
                            : "'$\(group)' refers to group \(group), and the regular expression has \(captures)")
                }
                parts.append(.capture(group))
            } else if let variable = Self.variableNames.first(where: { $0.0 == name }) {
                parts.append(variable.1)
            } else {
                let hint = ConfigReader.closest(to: name, in: Self.variableNames.map(\.0)).map { " (did you mean '$\($0)'?)" } ?? ""
                throw ConfigValueError(
                    name.isEmpty
                        ? "a '$' is not followed by a variable name (write '$$' for a dollar sign)"
                        : "unknown variable '$\(name)'\(hint); variables are \(Self.namesList) and $1...$9")
            }
        }
        flush()
        self.parts = parts
    }

    private static var namesList: String { variableNames.map { "$" + $0.0 }.joined(separator: ", ") }

    /// Calls `append` with the value's pieces for `request`. `path` is the path the node is sent;
    /// `captures[n - 1]` is group `n` (an unmatched group is empty).
    public func render<Request: RoutingRequest>(
        _ request: Request, path: Substring, captures: [Substring], _ append: (Substring) -> Void
    ) {
        for part in parts {
            switch part {
            case .literal(let text): append(text[...])
            case .path: append(path)
            case .query: append(request.query)
            case .pathAndQuery:
                append(path)
                if !request.query.isEmpty {
                    append("?")
                    append(request.query)
                }
            case .host: append(request.host ?? "")
            case .clientIP: append(request.clientIP)
            case .capture(let group): append(group <= captures.count ? captures[group - 1] : "")
            }
        }
    }

    /// The value for `request`, as one string.
    public func rendered<Request: RoutingRequest>(_ request: Request, path: Substring, captures: [Substring] = []) -> String {
        if let literal { return literal }
        var text = ""
        render(request, path: path, captures: captures) { text += $0 }
        return text
    }
}

/// Why a configured value cannot be used; the parser adds the field's path.
public struct ConfigValueError: Error, Sendable, Equatable {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }
}
