import Yams

/// A parsed configuration document before it is interpreted: mappings keep their key order and every
/// value remembers the line it came from, so that errors can point at it. YAML and JSON both parse
/// into this tree (JSON is read as YAML flow syntax, so its errors carry lines too).
indirect enum ConfigTree: Sendable {
    /// A scalar; `quoted` is true when the source quoted it, which makes it a string whatever it looks like.
    case scalar(String, quoted: Bool, line: Int?)
    case sequence([ConfigTree], line: Int?)
    case mapping([(key: String, value: ConfigTree)], line: Int?)

    var line: Int? {
        switch self {
        case .scalar(_, _, let line), .sequence(_, let line), .mapping(_, let line): return line
        }
    }

    /// A short name of the value's kind, for "expected X, found Y" messages.
    var kindName: String {
        switch self {
        case .scalar(let text, let quoted, _):
            if quoted { return "a string" }
            if Self.isNull(text) { return "null" }
            if text == "true" || text == "false" { return "a boolean" }
            if Int(text) != nil { return "a number" }
            return "a string"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    static func isNull(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    /// Parses YAML (or JSON) text. An empty document is an empty mapping.
    static func parse(_ text: String) throws(ConfigError) -> ConfigTree {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(issues: [Self.issue(from: error)])
        } catch {
            throw ConfigError(issues: [ConfigIssue(path: "", line: nil, message: "cannot parse: \(error)")])
        }
        guard let root else { return .mapping([], line: 1) }
        return try Self.convert(root)
    }

    private static func convert(_ node: Yams.Node) throws(ConfigError) -> ConfigTree {
        let line = node.mark?.line
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style != .plain && scalar.style != .any
            return .scalar(scalar.string, quoted: quoted, line: line)
        case .sequence(let sequence):
            var items: [ConfigTree] = []
            items.reserveCapacity(sequence.count)
            for item in sequence { items.append(try convert(item)) }
            return .sequence(items, line: line)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigTree)] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigError(issues: [ConfigIssue(path: "", line: key.mark?.line, message: "mapping keys must be plain strings")])
                }
                pairs.append((keyScalar.string, try convert(value)))
            }
            return .mapping(pairs, line: line)
        case .alias:
            throw ConfigError(issues: [ConfigIssue(path: "", line: line, message: "YAML aliases are not supported")])
        }
    }

    private static func issue(from error: YamlError) -> ConfigIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigIssue(path: "", line: mark.line, message: "syntax error: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigIssue(
                path: "", line: context.mark.line,
                message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in mapping")
        default:
            return ConfigIssue(path: "", line: nil, message: "syntax error: \(error)")
        }
    }
}
