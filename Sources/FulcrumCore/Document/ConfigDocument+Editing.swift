extension ConfigDocument {
    /// The value at a path of mapping keys; `nil` when a key is missing or a value on the way is
    /// not a mapping.
    public func value(at path: [String]) -> ConfigDocument? {
        var current: ConfigDocument? = self
        for key in path { current = current?[key] }
        return current
    }

    /// Sets (or with `nil`, removes) the value at a path of mapping keys, creating missing
    /// mappings on the way. Does nothing where a value on the way is not a mapping.
    public mutating func setValue(_ value: ConfigDocument?, at path: [String]) {
        guard let key = path.first else {
            self = value ?? .null
            return
        }
        guard case .mapping = self else { return }
        if path.count == 1 {
            self[key] = value
            return
        }
        var child = self[key] ?? .emptyMapping
        child.setValue(value, at: Array(path.dropFirst()))
        self[key] = child
    }

    /// The document with a JSON merge patch (RFC 7396) applied: a mapping patch sets its members
    /// (recursively for mappings, `null` removing a member); any other patch replaces the value.
    public func merged(with patch: ConfigDocument) -> ConfigDocument {
        guard case .mapping(let patchMembers) = patch else { return patch }
        var result: ConfigDocument = if case .mapping = self { self } else { .emptyMapping }
        for member in patchMembers {
            if member.value == .null {
                result[member.key] = nil
            } else {
                result[member.key] = (result[member.key] ?? .null).merged(with: member.value)
            }
        }
        return result
    }
}
