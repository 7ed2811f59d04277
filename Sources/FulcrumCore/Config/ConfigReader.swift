/// Reads typed values out of a ``ConfigDocument`` and collects every problem with its path (and,
/// for a document read from text, its line), instead of stopping at the first one.
final class ConfigReader {
    private(set) var issues: [ConfigIssue] = []
    private let lines: SourceLines

    init(lines: SourceLines) {
        self.lines = lines
    }

    func fail(_ path: String, _ message: String) {
        issues.append(ConfigIssue(path: path, line: lines.line(of: path), message: message))
    }

    /// The fields of a mapping, after checking that every key is one of `allowed`.
    /// Reports a non-mapping and each unknown key (with a suggestion when one is close).
    func object(_ node: ConfigDocument, _ path: String, allowed: [String]) -> ConfigObject? {
        guard case .mapping(let members) = node else {
            fail(path, "expected a mapping, found \(node.kindName)")
            return nil
        }
        var fields: [String: ConfigDocument] = [:]
        for member in members {
            if allowed.contains(member.key) {
                fields[member.key] = member.value
            } else {
                let hint = Self.closest(to: member.key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                fail(join(path, member.key), "unknown field\(hint)")
            }
        }
        return ConfigObject(path: path, fields: fields, reader: self)
    }

    /// The entries of a mapping whose keys are names chosen by the user (services, headers...).
    func namedEntries(_ node: ConfigDocument, _ path: String) -> [(key: String, value: ConfigDocument)] {
        guard case .mapping(let members) = node else {
            fail(path, "expected a mapping, found \(node.kindName)")
            return []
        }
        return members.map { ($0.key, $0.value) }
    }

    func list(_ node: ConfigDocument, _ path: String) -> [ConfigDocument] {
        guard case .list(let items) = node else {
            fail(path, "expected a list, found \(node.kindName)")
            return []
        }
        return items
    }

    /// A string; a number or a boolean is taken as it is spelled (`name: 42` is the name "42").
    func string(_ node: ConfigDocument, _ path: String, allowEmpty: Bool = false) -> String? {
        guard let text = node.scalarText else {
            fail(path, "expected a string, found \(node.kindName)")
            return nil
        }
        if text.isEmpty && !allowEmpty {
            fail(path, "must not be empty")
            return nil
        }
        return text
    }

    /// A string or a list of strings (a single value is a list of one).
    func strings(_ node: ConfigDocument, _ path: String) -> [String]? {
        if case .list(let items) = node {
            var values: [String] = []
            for (index, item) in items.enumerated() {
                guard let value = string(item, "\(path)[\(index)]") else { return nil }
                values.append(value)
            }
            if values.isEmpty { fail(path, "must not be empty") }
            return values
        }
        return string(node, path).map { [$0] }
    }

    func int(_ node: ConfigDocument, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .number(let text) = node, let value = Int(text) else {
            fail(path, "expected a whole number, found \(node.kindName)")
            return nil
        }
        guard range.contains(value) else {
            fail(path, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    /// A number (not a quoted one).
    func number(_ node: ConfigDocument) -> Double? {
        if case .number(let text) = node { return Double(text) }
        return nil
    }

    func bool(_ node: ConfigDocument, _ path: String) -> Bool? {
        if case .bool(let value) = node { return value }
        fail(path, "expected true or false, found \(node.kindName)")
        return nil
    }

    /// A duration: a number of seconds, or a number with a unit (`ms`, `s`, `m`, `h`), e.g. `250ms`, `2s`.
    func duration(_ node: ConfigDocument, _ path: String, minimum: Duration = .milliseconds(1)) -> Duration? {
        guard let text = node.scalarText, let value = ConfigDuration.parse(text) else {
            fail(path, "expected a duration such as 500ms, 2s or 1m, found \(node.kindName) '\(node.scalarText ?? "")'")
            return nil
        }
        guard value >= minimum else {
            fail(path, "must be at least \(ConfigDuration.format(minimum))")
            return nil
        }
        return value
    }

    func oneOf<T>(_ node: ConfigDocument, _ path: String, _ choices: [(String, T)]) -> T? {
        guard let text = string(node, path) else { return nil }
        if let match = choices.first(where: { $0.0 == text }) { return match.1 }
        fail(path, "'\(text)' is not one of \(choices.map(\.0).joined(separator: ", "))")
        return nil
    }

    func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The allowed key nearest to `key` by edit distance, if it is near enough to be a typo.
    static func closest(to key: String, in allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(Array(key.lowercased().utf8), Array($0.utf8))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    private static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where j <= b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// The checked fields of one mapping, with its path for nested reads.
struct ConfigObject {
    let path: String
    let fields: [String: ConfigDocument]
    let reader: ConfigReader

    subscript(_ key: String) -> ConfigDocument? { fields[key] }

    func path(_ key: String) -> String { reader.join(path, key) }

    /// The field `key`, or an issue saying it is required (on the line of the mapping).
    func require(_ key: String) -> ConfigDocument? {
        if let value = fields[key] { return value }
        reader.fail(path(key), "is required")
        return nil
    }
}

/// Parsing and printing of the durations used in configuration files.
public enum ConfigDuration {
    /// Parses `250ms`, `2s`, `1.5s`, `1m`, `1h` or a bare number of seconds.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// Formats a duration the way `parse` reads it back, e.g. `2s` or `250ms`.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        if ms % 3_600_000 == 0 && ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 && ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    /// The duration in whole milliseconds.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
