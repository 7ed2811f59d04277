/// A regular expression compiled once when the configuration is compiled (a route's
/// `path_regex`, an access rule's or a body condition's `regex`). Matching searches the text;
/// anchor with `^` and `$` for whole matches.
///
/// Most texts a rule meets do not match it (a WAF's expressions look for attacks), and Swift's
/// regex engine costs about a microsecond even to fail. So a literal that every match must
/// contain is taken from the expression when it has one (``RequiredLiteral``), and a text
/// without it is answered `false` at the cost of a byte search. Texts with bytes above 0x7F go
/// to the engine whatever they hold: it compares characters by canonical equivalence and folds
/// case by Unicode (U+212A KELVIN SIGN is a `K`), which a byte search cannot follow.
struct PathPattern: @unchecked Sendable {
    // Regex is immutable after construction; @unchecked because its Sendable conformance is
    // not declared for the type-erased output on every toolchain.
    private let regex: Regex<AnyRegexOutput>
    let source: String
    private let required: RequiredLiteral?

    init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(source)
        self.required = RequiredLiteral(source)
    }

    /// Why `source` does not compile, or cannot be used on requests, or `nil` when it can.
    static func compileError(_ source: String) -> String? {
        do {
            _ = try Regex(source)
        } catch {
            return "\(error)"
        }
        return nestedRepetition(source)
    }

    /// Refuses a repeated group that repeats inside (`(a+)+`, `(\w*)*`, `(x{2,})+`): Swift's
    /// engine backtracks, and on a crafted text such an expression takes time exponential in the
    /// text's length (ReDoS), stalling the event loop that evaluates it, and with it every
    /// connection of that loop. Expressions come from operators but texts from clients.
    static func nestedRepetition(_ source: String) -> String? {
        let bytes = Array(source.utf8)
        var repeatsInside: [Bool] = []  // one per open group: whether something in it repeats
        var index = 0
        func quantifierRepeats(at position: Int) -> Bool {
            guard position < bytes.count else { return false }
            switch bytes[position] {
            case UInt8(ascii: "*"), UInt8(ascii: "+"): return true
            case UInt8(ascii: "{"):
                // {n} with n <= 1 does not repeat; {n,}, {n,m} with m > 1 do
                var end = position + 1
                while end < bytes.count, bytes[end] != UInt8(ascii: "}") { end += 1 }
                let inside = String(decoding: bytes[(position + 1)..<min(end, bytes.count)], as: UTF8.self)
                let bounds = inside.split(separator: ",", omittingEmptySubsequences: false)
                if bounds.count == 1 { return (Int(bounds[0]) ?? 2) > 1 }
                return bounds.count == 2 && (bounds[1].isEmpty || (Int(bounds[1]) ?? 2) > 1)
            default: return false
            }
        }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"):
                index += 2
                if index - 1 < bytes.count, quantifierRepeats(at: index), !repeatsInside.isEmpty { repeatsInside[repeatsInside.count - 1] = true }
                continue
            case UInt8(ascii: "["):
                var end = index + 1
                if end < bytes.count, bytes[end] == UInt8(ascii: "^") { end += 1 }
                if end < bytes.count, bytes[end] == UInt8(ascii: "]") { end += 1 }
                while end < bytes.count, bytes[end] != UInt8(ascii: "]") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
                index = end + 1
                if quantifierRepeats(at: index), !repeatsInside.isEmpty { repeatsInside[repeatsInside.count - 1] = true }
                continue
            case UInt8(ascii: "("):
                repeatsInside.append(false)
            case UInt8(ascii: ")"):
                let inner = repeatsInside.popLast() ?? false
                let repeated = quantifierRepeats(at: index + 1)
                if inner && repeated {
                    return "a repeated group repeats inside (as in (a+)+): on a crafted request this takes exponential time; write it without the nesting"
                }
                if (inner || repeated), !repeatsInside.isEmpty { repeatsInside[repeatsInside.count - 1] = true }
            default:
                if quantifierRepeats(at: index + 1), !repeatsInside.isEmpty { repeatsInside[repeatsInside.count - 1] = true }
            }
            index += 1
        }
        return nil
    }

    func matches(_ text: Substring) -> Bool {
        if let required, !required.mayBeIn(text) { return false }
        return (try? regex.firstMatch(in: text)) != nil
    }

    /// The groups of the first match in `text` (an unmatched group is empty), or `nil`.
    func captures(in text: Substring) -> [Substring]? {
        if let required, !required.mayBeIn(text) { return nil }
        guard let match = try? regex.firstMatch(in: text) else { return nil }
        var groups: [Substring] = []
        for index in 1..<max(1, match.output.count) {
            groups.append(match.output[index].substring ?? "")
        }
        return groups
    }

    /// The number of groups of `source`, or the reason it does not compile. Counted in the
    /// source, as PCRE counts them: each `(` that is not escaped, not in a `[...]` class, and
    /// either plain or a named group (`(?<name>`, `(?P<name>`, `(?'name'`).
    static func groupCount(_ source: String) -> Result<Int, ConfigValueError> {
        if let problem = PathPattern.compileError(source) {
            return .failure(ConfigValueError("not a valid regular expression: \(problem)"))
        }
        let bytes = Array(source.utf8)
        var count = 0
        var index = 0
        var inClass = false
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 1  // the escaped byte is skipped with it
            case UInt8(ascii: "["): inClass = true
            case UInt8(ascii: "]"): inClass = false
            case UInt8(ascii: "(") where !inClass:
                let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                if next != UInt8(ascii: "?") {
                    count += 1
                } else if index + 2 < bytes.count {
                    let kind = bytes[index + 2]
                    let named = kind == UInt8(ascii: "P") || kind == UInt8(ascii: "'")
                        || (kind == UInt8(ascii: "<") && index + 3 < bytes.count
                            && bytes[index + 3] != UInt8(ascii: "=") && bytes[index + 3] != UInt8(ascii: "!"))
                    if named { count += 1 }
                }
            default: break
            }
            index += 1
        }
        return .success(count)
    }

}

/// The longest run of literal ASCII characters that every match of an expression contains, found
/// in its top level: outside groups and classes, not made optional by `?`, `*` or `{`, with no
/// top-level `|`. Expressions it cannot read surely (inline flags other than a leading `(?i)`,
/// `\Q`, non-ASCII literals) have none, and always go to the engine.
struct RequiredLiteral: Sendable, Equatable {
    /// Lower-cased when ``ignoresCase``.
    let bytes: [UInt8]
    let ignoresCase: Bool

    init?(_ source: String) {
        var pattern = Array(source.utf8)
        var ignoresCase = false
        if pattern.starts(with: Array("(?i)".utf8)) {
            ignoresCase = true
            pattern.removeFirst(4)
        }
        var runs: [[UInt8]] = []
        var run: [UInt8] = []
        func endRun() {
            if !run.isEmpty { runs.append(run) }
            run = []
        }
        var index = 0
        while index < pattern.count {
            let byte = pattern[index]
            if byte >= 0x80 { return nil }
            switch byte {
            case UInt8(ascii: "\\"):
                guard index + 1 < pattern.count else { return nil }
                let escaped = pattern[index + 1]
                let isLetterOrDigit = (escaped >= 0x30 && escaped <= 0x39) || (escaped | 0x20 >= 0x61 && escaped | 0x20 <= 0x7A)
                if !isLetterOrDigit {
                    run.append(ignoresCase ? Self.lowercased(escaped) : escaped)  // \. \/ \[: the character itself
                } else if Self.singleEscapes.contains(escaped) {
                    endRun()  // \d, \s, \b...: a class or an assertion of its own
                } else {
                    return nil  // \x41, \u{...}, \p{...}, \1, \Q...: not read here
                }
                index += 2
                continue
            case UInt8(ascii: "|"):
                return nil  // alternatives at the top level: no byte is in every match
            case UInt8(ascii: "("):
                if index + 1 < pattern.count, pattern[index + 1] == UInt8(ascii: "?"),
                    !(index + 2 < pattern.count && pattern[index + 2] == UInt8(ascii: ":"))
                {
                    return nil  // inline flags, lookaround, named groups: not read here
                }
                endRun()
                guard let end = Self.closing(pattern, from: index) else { return nil }
                index = end + 1
                continue
            case UInt8(ascii: "["):
                endRun()
                guard let end = Self.classEnd(pattern, from: index) else { return nil }
                index = end + 1
                continue
            case UInt8(ascii: "?"), UInt8(ascii: "*"), UInt8(ascii: "{"):
                if !run.isEmpty { run.removeLast() }  // the character before is optional
                endRun()
                if byte == UInt8(ascii: "{") {
                    while index < pattern.count, pattern[index] != UInt8(ascii: "}") { index += 1 }
                }
            case UInt8(ascii: "+"):
                endRun()  // the character before stays, but more of it may follow
            case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: ")"):
                endRun()
            default:
                run.append(ignoresCase ? Self.lowercased(byte) : byte)
            }
            index += 1
        }
        endRun()
        guard let longest = runs.max(by: { $0.count < $1.count }), longest.count >= 2 else { return nil }
        bytes = longest
        self.ignoresCase = ignoresCase
    }

    /// Escapes that stand for a class or an assertion and take nothing after them.
    private static let singleEscapes = Set("dDwWsSbBAzZntrfvhHRXG".utf8)

    /// The index of the `)` that closes the group opened at `start`.
    private static func closing(_ pattern: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var index = start
        while index < pattern.count {
            switch pattern[index] {
            case UInt8(ascii: "\\"): index += 1
            case UInt8(ascii: "["): guard let end = classEnd(pattern, from: index) else { return nil }; index = end
            case UInt8(ascii: "("): depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
            index += 1
        }
        return nil
    }

    /// The index of the `]` that closes the class opened at `start` (a `]` first in it is literal).
    private static func classEnd(_ pattern: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        if index < pattern.count, pattern[index] == UInt8(ascii: "^") { index += 1 }
        if index < pattern.count, pattern[index] == UInt8(ascii: "]") { index += 1 }
        while index < pattern.count {
            switch pattern[index] {
            case UInt8(ascii: "\\"): index += 1
            case UInt8(ascii: "]"): return index
            default: break
            }
            index += 1
        }
        return nil
    }

    /// `false` when `text` surely lacks the literal; `true` when it has it, or has bytes above
    /// 0x7F (left to the engine).
    func mayBeIn(_ text: Substring) -> Bool {
        var text = text
        return text.withUTF8 { buffer in
            let count = buffer.count
            let length = bytes.count
            for index in 0..<count {
                if buffer[index] >= 0x80 { return true }
                guard index + length <= count else { continue }  // still looking for bytes above 0x7F
                var offset = 0
                while offset < length {
                    let byte = buffer[index + offset]
                    if (ignoresCase ? Self.lowercased(byte) : byte) != bytes[offset] { break }
                    offset += 1
                }
                if offset == length { return true }
            }
            return false
        }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }
}
