/// A configuration as data: the tree of values a YAML or JSON document holds, mapping keys in their
/// order. This is what the store keeps and what the admin API reads and edits; a ``FulcrumConfig`` is
/// what it means once validated (``FulcrumConfig/parse(document:)``).
public indirect enum ConfigDocument: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, kept as its JSON text (`3`, `0.5`, `-1e3`) so that nothing is rounded.
    case number(String)
    case string(String)
    case list([ConfigDocument])
    case mapping([Member])

    /// One key and its value in a mapping.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: ConfigDocument

        public init(_ key: String, _ value: ConfigDocument) {
            self.key = key
            self.value = value
        }
    }

    /// An empty mapping.
    public static let emptyMapping = ConfigDocument.mapping([])

    /// A whole number.
    public static func int(_ value: Int) -> ConfigDocument { .number(String(value)) }

    /// The value under `key` of a mapping; `nil` for a missing key or a value that is not a mapping.
    /// Setting `nil` removes the key; setting a new key appends it.
    public subscript(key: String) -> ConfigDocument? {
        get {
            guard case .mapping(let members) = self else { return nil }
            return members.first { $0.key == key }?.value
        }
        set {
            guard case .mapping(var members) = self else { return }
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append(Member(key, newValue))
            }
            self = .mapping(members)
        }
    }

    /// The members of a mapping (empty for any other value).
    public var members: [Member] {
        if case .mapping(let members) = self { return members }
        return []
    }

    /// The items of a list (empty for any other value).
    public var items: [ConfigDocument] {
        if case .list(let items) = self { return items }
        return []
    }

    /// The text of a string value.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The value of a whole number.
    public var intValue: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    /// A short name of the value's kind, for messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .list: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

extension ConfigDocument {
    /// The text of a scalar (a string, a number or a boolean as spelled); `nil` for null, lists
    /// and mappings.
    var scalarText: String? {
        switch self {
        case .string(let text), .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .null, .list, .mapping: return nil
        }
    }
}

extension FulcrumConfig {
    /// Validates a document, exactly as ``parse(_:)`` validates text (issues carry paths, not lines).
    public static func parse(document: ConfigDocument) throws(ConfigError) -> FulcrumConfig {
        try parse(document: document, lines: .none)
    }
}

/// The JSON number grammar (RFC 8259 section 6).
enum JSONNumber {
    static func isValid(_ text: String) -> Bool {
        var bytes = text.utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        guard let first = bytes.first, isDigit(first) else { return false }
        if first == UInt8(ascii: "0") {
            bytes = bytes.dropFirst()
        } else {
            bytes = bytes.drop(while: isDigit)
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard let digit = bytes.first, isDigit(digit) else { return false }
            bytes = bytes.drop(while: isDigit)
        }
        if let e = bytes.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard let digit = bytes.first, isDigit(digit) else { return false }
            bytes = bytes.drop(while: isDigit)
        }
        return bytes.isEmpty
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
