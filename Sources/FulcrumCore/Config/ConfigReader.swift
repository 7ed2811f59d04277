/// Reads typed values out of a ``ConfigTree`` and collects every problem with its path and line,
/// instead of stopping at the first one.
final class ConfigReader {
    private(set) var issues: [ConfigIssue] = []

    func fail(_ path: String, _ node: ConfigTree?, _ message: String) {
        issues.append(ConfigIssue(path: path, line: node?.line, message: message))
    }

    /// The fields of a mapping, after checking that every key is one of `allowed`.
    /// Reports a non-mapping and each unknown key (with a suggestion when one is close).
    func object(_ node: ConfigTree, _ path: String, allowed: [String]) -> ConfigObject? {
        guard case .mapping(let pairs, _) = node else {
            fail(path, node, "expected a mapping, found \(node.kindName)")
            return nil
        }
        var fields: [String: ConfigTree] = [:]
        for (key, value) in pairs {
            if allowed.contains(key) {
                fields[key] = value
            } else {
                let hint = Self.closest(to: key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                fail(join(path, key), value, "unknown field\(hint)")
            }
        }
        return ConfigObject(path: path, fields: fields, reader: self)
    }

    /// The entries of a mapping whose keys are names chosen by the user (services, headers...).
    func namedEntries(_ node: ConfigTree, _ path: String) -> [(key: String, value: ConfigTree)] {
        guard case .mapping(let pairs, _) = node else {
            fail(path, node, "expected a mapping, found \(node.kindName)")
            return []
        }
        return pairs
    }

    func list(_ node: ConfigTree, _ path: String) -> [ConfigTree] {
        guard case .sequence(let items, _) = node else {
            fail(path, node, "expected a list, found \(node.kindName)")
            return []
        }
        return items
    }

    func string(_ node: ConfigTree, _ path: String, allowEmpty: Bool = false) -> String? {
        guard case .scalar(let text, let quoted, _) = node, quoted || !ConfigTree.isNull(text) else {
            fail(path, node, "expected a string, found \(node.kindName)")
            return nil
        }
        if text.isEmpty && !allowEmpty {
            fail(path, node, "must not be empty")
            return nil
        }
        return text
    }

    /// A string or a list of strings (a single value is a list of one).
    func strings(_ node: ConfigTree, _ path: String) -> [String]? {
        if case .sequence(let items, _) = node {
            var values: [String] = []
            for (index, item) in items.enumerated() {
                guard let value = string(item, "\(path)[\(index)]") else { return nil }
                values.append(value)
            }
            if values.isEmpty { fail(path, node, "must not be empty") }
            return values
        }
        return string(node, path).map { [$0] }
    }

    func int(_ node: ConfigTree, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let text, let quoted, _) = node, !quoted, let value = Int(text) else {
            fail(path, node, "expected a whole number, found \(node.kindName)")
            return nil
        }
        guard range.contains(value) else {
            fail(path, node, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    func bool(_ node: ConfigTree, _ path: String) -> Bool? {
        if case .scalar(let text, false, _) = node {
            if text == "true" { return true }
            if text == "false" { return false }
        }
        fail(path, node, "expected true or false, found \(node.kindName)")
        return nil
    }

    /// A duration: a number of seconds, or a number with a unit (`ms`, `s`, `m`, `h`), e.g. `250ms`, `2s`.
    func duration(_ node: ConfigTree, _ path: String, minimum: Duration = .milliseconds(1)) -> Duration? {
        guard case .scalar(let text, _, _) = node, let value = ConfigDuration.parse(text) else {
            fail(path, node, "expected a duration such as 500ms, 2s or 1m, found \(node.kindName) '\(node.scalarText ?? "")'")
            return nil
        }
        guard value >= minimum else {
            fail(path, node, "must be at least \(ConfigDuration.format(minimum))")
            return nil
        }
        return value
    }

    func oneOf<T>(_ node: ConfigTree, _ path: String, _ choices: [(String, T)]) -> T? {
        guard let text = string(node, path) else { return nil }
        if let match = choices.first(where: { $0.0 == text }) { return match.1 }
        fail(path, node, "'\(text)' is not one of \(choices.map(\.0).joined(separator: ", "))")
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
    let fields: [String: ConfigTree]
    let reader: ConfigReader

    subscript(_ key: String) -> ConfigTree? { fields[key] }

    func path(_ key: String) -> String { reader.join(path, key) }

    func require(_ key: String, _ node: ConfigTree) -> ConfigTree? {
        if let value = fields[key] { return value }
        reader.fail(path(key), node, "is required")
        return nil
    }
}

extension ConfigTree {
    var scalarText: String? {
        if case .scalar(let text, _, _) = self { return text }
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
