extension ConfigDocument {
    /// The document as JSON: compact, or indented by two spaces with one member per line.
    public func jsonText(pretty: Bool = false) -> String {
        var output = ""
        writeJSON(into: &output, indent: pretty ? 0 : nil)
        return output
    }

    private func writeJSON(into output: inout String, indent: Int?) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let text): output += text
        case .string(let text): Self.writeQuoted(text, into: &output)
        case .list(let items):
            guard !items.isEmpty else { output += "[]"; return }
            output += "["
            for (position, item) in items.enumerated() {
                if position > 0 { output += "," }
                Self.newline(&output, indent.map { $0 + 1 })
                item.writeJSON(into: &output, indent: indent.map { $0 + 1 })
            }
            Self.newline(&output, indent)
            output += "]"
        case .mapping(let members):
            guard !members.isEmpty else { output += "{}"; return }
            output += "{"
            for (position, member) in members.enumerated() {
                if position > 0 { output += "," }
                Self.newline(&output, indent.map { $0 + 1 })
                Self.writeQuoted(member.key, into: &output)
                output += indent == nil ? ":" : ": "
                member.value.writeJSON(into: &output, indent: indent.map { $0 + 1 })
            }
            Self.newline(&output, indent)
            output += "}"
        }
    }

    private static func newline(_ output: inout String, _ indent: Int?) {
        guard let indent else { return }
        output += "\n"
        output += String(repeating: "  ", count: indent)
    }

    /// A JSON string literal, which is also a valid YAML double-quoted scalar.
    static func writeQuoted(_ text: String, into output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// The document as block-style YAML, which reads back (with ``parse(_:)``) as the same document.
    /// Strings are written plain only when YAML would read them back as the same string.
    public func yamlText() -> String {
        var output = ""
        switch self {
        case .mapping(let members) where !members.isEmpty:
            Self.writeYAMLMembers(members, into: &output, indent: 0)
        case .list(let items) where !items.isEmpty:
            Self.writeYAMLItems(items, into: &output, indent: 0)
        default:
            output += inlineYAML + "\n"
        }
        return output
    }

    private static func writeYAMLMembers(_ members: [Member], into output: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent)
        for member in members {
            output += pad + yamlKey(member.key) + ":"
            member.value.writeYAMLValue(into: &output, indent: indent + 1)
        }
    }

    private static func writeYAMLItems(_ items: [ConfigDocument], into output: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent)
        for item in items {
            output += pad + "-"
            switch item {
            case .mapping(let members) where !members.isEmpty:
                // The first member shares the dash's line; the rest align with it.
                var first = ""
                writeYAMLMembers([members[0]], into: &first, indent: indent + 1)
                output += " " + first.dropFirst(pad.count + 2)
                writeYAMLMembers(Array(members.dropFirst()), into: &output, indent: indent + 1)
            case .list(let nested) where !nested.isEmpty:
                output += "\n"
                writeYAMLItems(nested, into: &output, indent: indent + 1)
            default:
                output += " " + item.inlineYAML + "\n"
            }
        }
    }

    private func writeYAMLValue(into output: inout String, indent: Int) {
        switch self {
        case .mapping(let members) where !members.isEmpty:
            output += "\n"
            Self.writeYAMLMembers(members, into: &output, indent: indent)
        case .list(let items) where !items.isEmpty:
            output += "\n"
            Self.writeYAMLItems(items, into: &output, indent: indent)
        default:
            output += " " + inlineYAML + "\n"
        }
    }

    /// Scalars, `[]` and `{}`.
    private var inlineYAML: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return Self.yamlScalar(text)
        case .list: return "[]"
        case .mapping: return "{}"
        }
    }

    private static func yamlKey(_ key: String) -> String { yamlScalar(key) }

    private static func yamlScalar(_ text: String) -> String {
        if isSafePlain(text) { return text }
        var quoted = ""
        writeQuoted(text, into: &quoted)
        return quoted
    }

    /// Plain scalars limited to characters with no YAML meaning, that do not read as null, a
    /// boolean or a number in YAML 1.1 or 1.2.
    private static func isSafePlain(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.properties.isAlphabetic || first == "/" || first == "_" else {
            return false
        }
        for scalar in text.unicodeScalars {
            let allowed = (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                || "/_-.".unicodeScalars.contains(scalar)
            if !allowed { return false }
        }
        let reserved: Set<String> = [
            "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
            "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
        ]
        return !reserved.contains(text) && !text.hasPrefix(".")
    }
}
