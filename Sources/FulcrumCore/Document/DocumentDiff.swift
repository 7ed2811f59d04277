/// One difference between two configuration documents: the path of the value and its two sides
/// (`nil` where the value is absent).
public struct DocumentChange: Sendable, Equatable, CustomStringConvertible {
    /// The dotted path, e.g. `services.users.nodes[0].weight`; empty for the whole document.
    public var path: String
    public var before: ConfigDocument?
    public var after: ConfigDocument?

    public init(path: String, before: ConfigDocument?, after: ConfigDocument?) {
        self.path = path
        self.before = before
        self.after = after
    }

    public var description: String {
        let location = path.isEmpty ? "(document)" : path
        switch (before, after) {
        case (nil, let after?): return "+ \(location): \(after.jsonText())"
        case (let before?, nil): return "- \(location): \(before.jsonText())"
        case (let before?, let after?): return "~ \(location): \(before.jsonText()) -> \(after.jsonText())"
        case (nil, nil): return "  \(location)"
        }
    }
}

extension ConfigDocument {
    /// The changes that turn `self` into `other`, in document order: mappings are compared key by
    /// key (a key in both is compared deeper), lists item by item at the same position, and any
    /// other difference replaces the whole value. Equal documents give no change.
    public func changes(to other: ConfigDocument) -> [DocumentChange] {
        var result: [DocumentChange] = []
        Self.compare(self, other, path: "", into: &result)
        return result
    }

    private static func compare(_ a: ConfigDocument, _ b: ConfigDocument, path: String, into result: inout [DocumentChange]) {
        guard a != b else { return }
        switch (a, b) {
        case (.mapping(let left), .mapping(let right)):
            for member in left {
                let childPath = path.isEmpty ? member.key : "\(path).\(member.key)"
                if let counterpart = right.first(where: { $0.key == member.key }) {
                    compare(member.value, counterpart.value, path: childPath, into: &result)
                } else {
                    result.append(DocumentChange(path: childPath, before: member.value, after: nil))
                }
            }
            for member in right where !left.contains(where: { $0.key == member.key }) {
                let childPath = path.isEmpty ? member.key : "\(path).\(member.key)"
                result.append(DocumentChange(path: childPath, before: nil, after: member.value))
            }
        case (.list(let left), .list(let right)):
            for position in 0..<max(left.count, right.count) {
                let childPath = "\(path)[\(position)]"
                switch (position < left.count ? left[position] : nil, position < right.count ? right[position] : nil) {
                case (let x?, let y?): compare(x, y, path: childPath, into: &result)
                case (let x?, nil): result.append(DocumentChange(path: childPath, before: x, after: nil))
                case (nil, let y?): result.append(DocumentChange(path: childPath, before: nil, after: y))
                case (nil, nil): break
                }
            }
        default:
            result.append(DocumentChange(path: path, before: a, after: b))
        }
    }
}
