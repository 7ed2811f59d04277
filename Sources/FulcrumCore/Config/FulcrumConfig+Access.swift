/// Parsing of access rules, CC rules and trusted proxies.
extension ConfigDocumentParser {
    static let conditionFields = ["client_ip", "path", "methods", "host", "header", "cookie", "query"]

    /// The rules of one scope (`path` is `access_rules`, `services.NAME.access_rules`, or
    /// `routes[N].access_rules`); `names` collects rule names across scopes, which must differ
    /// (they label the metrics).
    func accessRules(_ node: ConfigDocument, _ path: String, names: inout [String: String]) -> [AccessRule] {
        var rules: [AccessRule] = []
        for (index, item) in reader.list(node, path).enumerated() {
            let rulePath = "\(path)[\(index)]"
            guard let object = reader.object(item, rulePath, allowed: ["name", "allow", "deny", "action", "status", "body"]),
                let nameNode = object.require("name"), let name = reader.string(nameNode, object.path("name"))
            else { continue }
            if !HTTPSyntax.isName(name) { reader.fail(object.path("name"), "rule names may use letters, digits, '-', '_' and '.' only") }
            if let other = names[name] {
                reader.fail(object.path("name"), "rule name '\(name)' is also used at \(other)")
            } else {
                names[name] = rulePath
            }
            let effects = ["allow", "deny"].filter { object[$0] != nil }
            guard effects.count == 1, let effectName = effects.first, let effect = AccessRule.Effect(rawValue: effectName) else {
                reader.fail(rulePath, "a rule has either 'allow' or 'deny' with its conditions")
                continue
            }
            // read on when the conditions are wrong, so that every mistake of the rule is reported
            let conditions = self.conditions(object[effectName]!, object.path(effectName))
            var rule = AccessRule(name: name, effect: effect, conditions: conditions ?? RequestConditions())
            if effect == .allow {
                for field in ["action", "status", "body"] where object[field] != nil {
                    reader.fail(object.path(field), "an allow rule lets requests through; '\(field)' is for deny rules")
                }
            }
            if let actionNode = object["action"],
                let action = reader.oneOf(actionNode, object.path("action"), AccessRule.Action.allCases.map { ($0.rawValue, $0) })
            {
                rule.action = action
            }
            if let statusNode = object["status"], let status = reader.int(statusNode, object.path("status"), in: 400...599) {
                rule.status = status
            }
            if let bodyNode = object["body"], let body = reader.string(bodyNode, object.path("body"), allowEmpty: true) {
                rule.body = body
            }
            if conditions != nil { rules.append(rule) }
        }
        return rules
    }

    /// Conditions of an access rule or of a CC rule's `match`; `nil` when one is invalid.
    func conditions(_ node: ConfigDocument, _ path: String) -> RequestConditions? {
        guard let object = reader.object(node, path, allowed: Self.conditionFields) else { return nil }
        let before = reader.issues.count
        var conditions = RequestConditions()
        if let ipNode = object["client_ip"], let texts = reader.strings(ipNode, object.path("client_ip")) {
            for text in texts {
                if let range = AddressRange(parsing: text) { conditions.clientIP.append(range) } else {
                    reader.fail(object.path("client_ip"), "'\(text)' is not an IP address or CIDR range")
                }
            }
        }
        if let pathNode = object["path"] { conditions.path = matcher(pathNode, object.path("path")) }
        if let methodsNode = object["methods"], let methods = reader.strings(methodsNode, object.path("methods")) {
            for method in methods where !HTTPSyntax.isToken(method) || method.uppercased() != method {
                reader.fail(object.path("methods"), "'\(method)' is not an upper-case method name")
            }
            conditions.methods = methods
        }
        if let hostNode = object["host"] { conditions.host = matcher(hostNode, object.path("host")) }
        conditions.headers = namedMatchers(object["header"], object.path("header"), kind: "header")
        conditions.cookies = namedMatchers(object["cookie"], object.path("cookie"), kind: "cookie")
        conditions.query = namedMatchers(object["query"], object.path("query"), kind: "parameter")
        if conditions.isEmpty, reader.issues.count == before {
            reader.fail(path, "no condition: a rule for every request names them all (client_ip: [0.0.0.0/0, \"::/0\"])")
        }
        return reader.issues.count == before ? conditions : nil
    }

    private func namedMatchers(_ node: ConfigDocument?, _ path: String, kind: String) -> [NamedMatcher] {
        guard let node else { return [] }
        var result: [NamedMatcher] = []
        for (name, value) in reader.namedEntries(node, path) {
            guard HTTPSyntax.isToken(name) else {
                reader.fail("\(path).\(name)", "'\(name)' is not a valid \(kind) name")
                continue
            }
            if let matcher = matcher(value, "\(path).\(name)") { result.append(NamedMatcher(name: name, matcher: matcher)) }
        }
        return result
    }

    /// `value`, `[a, b]`, `{ prefix: ... }` or `{ regex: ... }`.
    func matcher(_ node: ConfigDocument, _ path: String) -> ValueMatcher? {
        switch node {
        case .mapping:
            guard let object = reader.object(node, path, allowed: ["exact", "prefix", "regex"]) else { return nil }
            let kinds = ["exact", "prefix", "regex"].filter { object[$0] != nil }
            guard kinds.count == 1, let kind = kinds.first, let valueNode = object[kind] else {
                reader.fail(path, "a matcher has one of exact, prefix and regex")
                return nil
            }
            switch kind {
            case "exact": return reader.strings(valueNode, object.path("exact")).map { .exact($0) }
            case "prefix": return reader.string(valueNode, object.path("prefix")).map { .prefix($0) }
            default:
                guard let source = reader.string(valueNode, object.path("regex")) else { return nil }
                if let error = PathPattern.compileError(source) {
                    reader.fail(object.path("regex"), "not a valid regular expression: \(error)")
                    return nil
                }
                return .regex(source)
            }
        default:
            return reader.strings(node, path).map { .exact($0) }
        }
    }

    func ccRules(_ node: ConfigDocument, _ path: String) -> [CCRule] {
        var rules: [CCRule] = []
        var names: Set<String> = []
        for (index, item) in reader.list(node, path).enumerated() {
            let rulePath = "\(path)[\(index)]"
            guard let object = reader.object(item, rulePath, allowed: ["name", "key", "match", "limit", "window", "ban", "status"]),
                let nameNode = object.require("name"), let name = reader.string(nameNode, object.path("name"))
            else { continue }
            if !HTTPSyntax.isName(name) { reader.fail(object.path("name"), "rule names may use letters, digits, '-', '_' and '.' only") }
            if !names.insert(name).inserted { reader.fail(object.path("name"), "CC rule name '\(name)' is used twice") }
            let limit = object.require("limit").flatMap { reader.int($0, object.path("limit"), in: 1...100_000_000) }
            let window = object.require("window").flatMap { reader.duration($0, object.path("window"), minimum: .milliseconds(100)) }
            let ban = object.require("ban").flatMap { reader.duration($0, object.path("ban"), minimum: .seconds(1)) }
            var key = RateLimit.Key.clientIP
            if let keyNode = object["key"], let text = reader.string(keyNode, object.path("key")) {
                switch HashKey(parsing: text) {
                case .clientIP?: key = .clientIP
                case .header(let name)?: key = .header(name)
                case .cookie(let name)?: key = .cookie(name)
                case .query(let name)?: key = .query(name)
                default: reader.fail(object.path("key"), "'\(text)' is not client_ip, header:NAME, cookie:NAME or query:NAME")
                }
            }
            let match = object["match"].flatMap { conditions($0, object.path("match")) }
            guard let limit, let window, let ban else { continue }
            var rule = CCRule(name: name, key: key, match: match, limit: limit, window: window, ban: ban)
            if let statusNode = object["status"], let status = reader.int(statusNode, object.path("status"), in: 400...599) {
                rule.status = status
            }
            rules.append(rule)
        }
        return rules
    }

    func trustedProxies(_ node: ConfigDocument, _ path: String) -> [AddressRange] {
        guard let texts = reader.strings(node, path) else { return [] }
        var ranges: [AddressRange] = []
        for (index, text) in texts.enumerated() {
            if let range = AddressRange(parsing: text) { ranges.append(range) } else {
                reader.fail("\(path)[\(index)]", "'\(text)' is not an IP address or CIDR range")
            }
        }
        return ranges
    }

    func cors(_ node: ConfigDocument, _ path: String) -> CORSPolicy? {
        guard let object = reader.object(node, path, allowed: ["origins", "methods", "headers", "expose_headers", "credentials", "max_age"]),
            let originsNode = object.require("origins"), let origins = reader.strings(originsNode, object.path("origins"))
        else { return nil }
        var policy = CORSPolicy(origins: origins)
        for origin in origins where origin != "*" {
            let parts = origin.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count != 3 || !(parts[0] == "http:" || parts[0] == "https:") || !parts[1].isEmpty || parts[2].isEmpty {
                reader.fail(object.path("origins"), "'\(origin)' is not an origin (scheme://host[:port], no path) or '*'")
            }
        }
        if let node = object["methods"], let methods = reader.strings(node, object.path("methods")) {
            for method in methods where !HTTPSyntax.isToken(method) || method.uppercased() != method {
                reader.fail(object.path("methods"), "'\(method)' is not an upper-case method name")
            }
            policy.methods = methods
        }
        for (key, keyPath) in [("headers", object.path("headers")), ("expose_headers", object.path("expose_headers"))] {
            guard let node = object[key], let names = reader.strings(node, keyPath) else { continue }
            for name in names where !HTTPSyntax.isToken(name) && !(key == "headers" && name == "*") {
                reader.fail(keyPath, "'\(name)' is not a header name")
            }
            if key == "headers" { policy.headers = names } else { policy.exposeHeaders = names }
        }
        if let node = object["credentials"], let value = reader.bool(node, object.path("credentials")) { policy.credentials = value }
        if policy.credentials, policy.allowsAnyOrigin {
            reader.fail(object.path("credentials"), "credentials cannot be allowed for origin '*': browsers refuse it; list the origins")
        }
        if let node = object["max_age"] { policy.maxAge = reader.duration(node, object.path("max_age"), minimum: .seconds(1)) }
        return policy
    }
}
