/// A route's path regular expression, compiled once when the configuration is compiled.
/// Matching searches the path (without query); anchor with `^` and `$` for whole-path matches.
struct PathPattern: @unchecked Sendable {
    // Regex is immutable after construction; @unchecked because its Sendable conformance is
    // not declared for the type-erased output on every toolchain.
    private let regex: Regex<AnyRegexOutput>
    let source: String

    init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(source)
    }

    /// Why `source` does not compile, or `nil` when it does.
    static func compileError(_ source: String) -> String? {
        do {
            _ = try Regex(source)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func matches(_ path: Substring) -> Bool {
        (try? regex.firstMatch(in: path)) != nil
    }
}
