/// `match.body`: a route condition on the request body (the original system's body strategy).
/// The body is read whole, up to ``maxBytes`` (a larger one is refused with 413), matched, and
/// forwarded unchanged. Only requests that reach such a route pay for it: routes without a body
/// condition are tried first (see ``Router``), and only when none of them takes the request is
/// its body read.
public struct BodyCondition: Sendable, Equatable {
    public enum Test: Sendable, Equatable {
        /// The regular expression matches somewhere in the body (read as UTF-8).
        case regex(String)
        /// The body is JSON and the value at `path` (object keys, dot-separated; list indexes as
        /// numbers) is `equals` (a string, or the text of a number or boolean).
        case json(path: [String], equals: String)
    }

    public var test: Test
    public var maxBytes: Int

    public static let defaultMaxBytes = 64 * 1024

    public init(test: Test, maxBytes: Int = BodyCondition.defaultMaxBytes) {
        self.test = test
        self.maxBytes = maxBytes
    }
}

/// A ``BodyCondition`` compiled: its expression built once.
struct BodyMatcher: Sendable {
    private let condition: BodyCondition
    private let pattern: PathPattern?

    init(_ condition: BodyCondition) {
        self.condition = condition
        if case .regex(let source) = condition.test { pattern = try! PathPattern(source) } else { pattern = nil }
    }

    var maxBytes: Int { condition.maxBytes }

    func matches(_ body: [UInt8]) -> Bool {
        switch condition.test {
        case .regex:
            return pattern!.matches(String(decoding: body, as: UTF8.self)[...])
        case .json(let path, let expected):
            guard let document = try? JSONDocumentReader.parse(String(decoding: body, as: UTF8.self)) else { return false }
            var value = document
            for key in path {
                switch value {
                case .mapping: guard let next = value[key] else { return false }; value = next
                case .list(let items): guard let index = Int(key), items.indices.contains(index) else { return false }; value = items[index]
                default: return false
                }
            }
            switch value {
            case .string(let text), .number(let text): return text == expected
            case .bool(let flag): return (flag ? "true" : "false") == expected
            default: return false
            }
        }
    }
}
