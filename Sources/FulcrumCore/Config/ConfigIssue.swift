/// One problem found in a configuration: where it is (a path such as `routes[1].match.path_regex`
/// and, for text sources, a line) and why it is wrong.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The dotted path of the offending field, e.g. `services.users.nodes[0].port`; empty for the document.
    public var path: String
    /// The 1-based line in the source text, when known.
    public var line: Int?
    /// Why the value is rejected.
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = path.isEmpty ? "config" : path
        if let line { return "\(location) (line \(line)): \(message)" }
        return "\(location): \(message)"
    }
}

/// The error thrown when a configuration is rejected; it carries every issue found, not just the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, in document order.
    public var issues: [ConfigIssue]

    public init(issues: [ConfigIssue]) {
        self.issues = issues
    }

    public var description: String {
        let count = issues.count == 1 ? "1 error" : "\(issues.count) errors"
        return "invalid configuration (\(count)):\n" + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
}
