import Yams

/// Where each value of a document parsed from text stood, by its path in the form configuration
/// errors use (`services.web.nodes[0].port`), so that an error can name the line. Documents that
/// did not come from text (the store, the admin API's JSON) have none, and their errors carry
/// paths only.
struct SourceLines: Sendable {
    private var byPath: [String: Int] = [:]

    static let none = SourceLines()

    /// The line of the value at `path`; for a path that is not in the document (a missing field),
    /// the line of the nearest value that contains it.
    func line(of path: String) -> Int? {
        var path = Substring(path)
        while true {
            if let line = byPath[String(path)] { return line }
            if path.isEmpty { return nil }
            if path.last == "]", let open = path.lastIndex(of: "[") {
                path = path[..<open]
            } else if let dot = path.lastIndex(of: ".") {
                path = path[..<dot]
            } else {
                path = ""
            }
        }
    }

    fileprivate mutating func record(_ path: String, _ line: Int?) {
        if let line { byPath[path] = line }
    }
}

extension ConfigDocument {
    /// Parses YAML or JSON text into a document (syntax only; nothing is validated).
    public static func parse(_ text: String) throws(ConfigError) -> ConfigDocument {
        try parseWithLines(text).document
    }

    /// Parses YAML (or JSON, read as YAML flow syntax, so that its errors carry lines too) and
    /// notes the line of every value. An empty text is an empty mapping. A plain scalar means
    /// null, a boolean or a number by its spelling; a quoted one is a string whatever it looks like.
    static func parseWithLines(_ text: String) throws(ConfigError) -> (document: ConfigDocument, lines: SourceLines) {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(issues: [issue(from: error)])
        } catch {
            throw ConfigError(issues: [ConfigIssue(path: "", line: nil, message: "cannot parse: \(error)")])
        }
        var lines = SourceLines()
        guard let root else { return (.emptyMapping, lines) }
        let document = try convert(root, path: "", lines: &lines)
        return (document, lines)
    }

    private static func convert(_ node: Yams.Node, path: String, lines: inout SourceLines) throws(ConfigError) -> ConfigDocument {
        lines.record(path, node.mark?.line)
        switch node {
        case .scalar(let scalar):
            let text = scalar.string
            if scalar.style != .plain && scalar.style != .any { return .string(text) }
            if isNull(text) { return .null }
            if text == "true" || text == "false" { return .bool(text == "true") }
            return JSONNumber.isValid(text) ? .number(text) : .string(text)
        case .sequence(let sequence):
            var items: [ConfigDocument] = []
            items.reserveCapacity(sequence.count)
            for (index, item) in sequence.enumerated() { items.append(try convert(item, path: "\(path)[\(index)]", lines: &lines)) }
            return .list(items)
        case .mapping(let mapping):
            var members: [Member] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigError(issues: [ConfigIssue(path: path, line: key.mark?.line, message: "mapping keys must be plain strings")])
                }
                let memberPath = path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)"
                members.append(Member(keyScalar.string, try convert(value, path: memberPath, lines: &lines)))
            }
            return .mapping(members)
        case .alias:
            throw ConfigError(issues: [ConfigIssue(path: path, line: node.mark?.line, message: "YAML aliases are not supported")])
        }
    }

    private static func isNull(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
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
