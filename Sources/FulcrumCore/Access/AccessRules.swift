/// The access rules of one scope compiled: regular expressions built once, and the rules indexed
/// so that a request is checked against the few that can match it rather than all of them. A
/// rule with `client_ip` is found through an ``AddressTrie`` of all the scope's ranges, one with
/// an exact or prefix `path` through a ``PrefixTree``; only the others (regular expressions or
/// fields alone) are tried on every request. Immutable; evaluated on the event loops.
public final class AccessRules: Sendable {
    public let rules: [AccessRule]
    private let conditions: [ConditionsMatcher]
    private let addresses: AddressTrie
    private let paths: PrefixTree
    /// Rules found neither through the trie nor the tree, in declaration order.
    private let unindexed: [Int]
    /// Whether a candidate rule's path condition still has to be checked: not when the path tree
    /// found it (its exact or prefix path holds); a rule found through ``addresses`` has its
    /// `client_ip` hold and its path, if any, unchecked.
    private let checksPath: [Bool]

    /// - Precondition: the rules were validated (their expressions compile).
    public init(_ rules: [AccessRule]) {
        self.rules = rules
        var addresses = AddressTrie()
        var paths = PrefixTree()
        var unindexed: [Int] = []
        var checksPath: [Bool] = []
        for (index, rule) in rules.enumerated() {
            let conditions = rule.conditions
            if !conditions.clientIP.isEmpty {
                for range in conditions.clientIP { addresses.insert(range, value: index) }
                checksPath.append(conditions.path != nil)
                continue
            }
            switch conditions.path {
            case .exact(let values)?:
                for value in values { paths.insert(value, route: index, exact: true) }
                checksPath.append(false)
            case .prefix(let prefix)?:
                paths.insert(prefix, route: index, exact: false)
                checksPath.append(false)
            case .regex?, nil:
                unindexed.append(index)
                checksPath.append(conditions.path != nil)
            }
        }
        self.conditions = rules.map { ConditionsMatcher($0.conditions) }
        self.addresses = addresses
        self.paths = paths
        self.unindexed = unindexed
        self.checksPath = checksPath
    }

    /// What the rules of a scope decided.
    public enum Verdict: Sendable, Equatable {
        /// The request goes on.
        case pass
        /// The deny rule at this index blocks it.
        case deny(rule: Int)
    }

    /// Evaluates the scope for `request` from `client`. `hits[rule]` counts each rule that
    /// matched (an allow rule that let the request skip the deny rules, a deny rule that blocked
    /// it, a logging rule); `candidates` is scratch space kept by the caller, so that evaluating
    /// allocates nothing.
    public func evaluate<Request: RoutingRequest>(
        _ request: Request, client: IPAddress, hits: inout [Int], candidates: inout [Int]
    ) -> Verdict {
        candidates.removeAll(keepingCapacity: true)
        addresses.forEachMatch(client) { candidates.append($0) }
        let (deepest, isExact) = paths.deepestMatch(request.path.utf8)
        if isExact { candidates.append(contentsOf: paths.nodes[deepest].exactRoutes) }
        var node = deepest
        while node >= 0 {
            candidates.append(contentsOf: paths.nodes[node].prefixRoutes)
            node = paths.nodes[node].parent
        }
        candidates.append(contentsOf: unindexed)
        guard !candidates.isEmpty else { return .pass }
        candidates.sort()
        // allow rules first: one that matches lets the request skip this scope's deny rules
        var previous = -1
        for index in candidates where index != previous {
            previous = index
            if rules[index].effect == .allow, matches(index, request) {
                hits[index] += 1
                return .pass
            }
        }
        previous = -1
        for index in candidates where index != previous {
            previous = index
            guard rules[index].effect == .deny, matches(index, request) else { continue }
            hits[index] += 1
            if rules[index].action == .block { return .deny(rule: index) }
        }
        return .pass
    }

    /// Whether a candidate rule's conditions hold (its `client_ip` held when the trie found it).
    private func matches<Request: RoutingRequest>(_ index: Int, _ request: Request) -> Bool {
        conditions[index].matches(request, checkingPath: checksPath[index])
    }
}

/// ``RequestConditions`` with their regular expressions compiled (the conditions of an access
/// rule, or the `match` of a CC rule). A class: read from an array for each rule a request meets,
/// a struct of this many arrays was copied there, a retain and a release of each.
public final class ConditionsMatcher: Sendable {
    let source: RequestConditions
    private let path: CompiledMatcher?
    private let host: CompiledMatcher?
    private let headers: [(String, CompiledMatcher)]
    private let cookies: [(String, CompiledMatcher)]
    private let query: [(String, CompiledMatcher)]
    private let clientIP: AddressTrie

    public init(_ conditions: RequestConditions) {
        source = conditions
        path = conditions.path.map { CompiledMatcher($0) }
        host = conditions.host.map { CompiledMatcher($0, ignoringCase: true) }
        headers = conditions.headers.map { ($0.name, CompiledMatcher($0.matcher)) }
        cookies = conditions.cookies.map { ($0.name, CompiledMatcher($0.matcher)) }
        query = conditions.query.map { ($0.name, CompiledMatcher($0.matcher)) }
        var trie = AddressTrie()
        for range in conditions.clientIP { trie.insert(range, value: 0) }
        clientIP = trie
    }

    /// Whether every condition but the client address holds (`checkingPath`: the path too).
    func matches<Request: RoutingRequest>(_ request: Request, checkingPath: Bool) -> Bool {
        if !source.methods.isEmpty, !source.methods.contains(request.method) { return false }
        if checkingPath, let path, !path.matches(request.path) { return false }
        if let host {
            guard let requested = request.host, host.matches(requested) else { return false }
        }
        for (name, matcher) in headers where !request.anyHeader(name, where: matcher.matches) { return false }
        for (name, matcher) in cookies where !request.anyCookie(name, where: matcher.matches) { return false }
        for (name, matcher) in query where !QueryString.anyDecodedValue(of: name, in: request.query, where: matcher.matches) { return false }
        return true
    }

    /// Whether all conditions hold for `request` from `client` (CC rules, which are not indexed).
    public func matches<Request: RoutingRequest>(_ request: Request, client: IPAddress) -> Bool {
        if !source.clientIP.isEmpty, !clientIP.contains(client) { return false }
        return matches(request, checkingPath: true)
    }
}

/// A ``ValueMatcher`` ready to use.
struct CompiledMatcher: Sendable {
    private enum Kind: Sendable {
        case exact([String])
        case prefix(String)
        case regex(PathPattern)
    }

    private let kind: Kind
    private let ignoringCase: Bool

    init(_ matcher: ValueMatcher, ignoringCase: Bool = false) {
        self.ignoringCase = ignoringCase
        switch matcher {
        case .exact(let values): kind = .exact(ignoringCase ? values.map { $0.lowercased() } : values)
        case .prefix(let prefix): kind = .prefix(ignoringCase ? prefix.lowercased() : prefix)
        case .regex(let source): kind = .regex(try! PathPattern(source))
        }
    }

    func matches(_ value: Substring) -> Bool {
        switch kind {
        case .exact(let values):
            return values.contains { ignoringCase ? Self.equalIgnoringCase(value, $0) : value == $0 }
        case .prefix(let prefix):
            return ignoringCase ? value.count >= prefix.count && Self.equalIgnoringCase(value.prefix(prefix.count), prefix) : value.hasPrefix(prefix)
        case .regex(let pattern):
            return pattern.matches(value)
        }
    }

    /// ASCII case-insensitive equality (`lowercased` is already applied to `expected`).
    private static func equalIgnoringCase(_ value: Substring, _ expected: String) -> Bool {
        value.utf8.count == expected.utf8.count
            && zip(value.utf8, expected.utf8).allSatisfy { a, b in (a >= 0x41 && a <= 0x5A ? a | 0x20 : a) == b }
    }
}

/// The client behind trusted proxies: `X-Forwarded-For` read from the right, each proxy adding
/// the address it got the request from, so only the entries added by trusted proxies can be
/// believed. The client is the right-most entry not in the trusted ranges; if every entry is
/// trusted, the left-most. An entry that is not an address stops the walk (what lies left of it
/// was written by someone untrusted) and the last trusted entry read is the client, or `nil`
/// when there is none (then the socket's address, the proxy, is the client).
public enum ForwardedFor {
    /// - Parameter fieldValues: the values of the `X-Forwarded-For` fields, in the order received.
    public static func client(_ fieldValues: [Substring], trusted: AddressTrie) -> (text: Substring, address: IPAddress)? {
        var lastTrusted: (Substring, IPAddress)? = nil
        for value in fieldValues.reversed() {
            for element in value.split(separator: ",", omittingEmptySubsequences: false).reversed() {
                var start = element.startIndex
                var end = element.endIndex
                while start < end, element[start] == " " || element[start] == "\t" { start = element.index(after: start) }
                while end > start, element[element.index(before: end)] == " " || element[element.index(before: end)] == "\t" {
                    end = element.index(before: end)
                }
                let trimmed = element[start..<end]
                guard let address = IPAddress(parsing: trimmed) else { return lastTrusted }
                guard trusted.contains(address) else { return (trimmed, address) }
                lastTrusted = (trimmed, address)
            }
        }
        return lastTrusted
    }
}
