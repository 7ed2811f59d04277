import FulcrumCore

/// JSON Schemas of every policy and setting the console edits, served in the OpenAPI document
/// (`components.schemas.PolicySchemas`): the console builds its forms from them, field by field
/// with types, limits, choices and defaults, so that a new field appears in the console by being
/// described here, next to the parser that reads it. Defaults come from the model's own values.
enum PolicySchemas {
    /// Policies of a service, at `/api/v1/services/{service}/policies/{policy}`.
    static let servicePolicies = ["health_check", "passive_health", "circuit_breaker", "rate_limit", "max_in_flight", "when_no_node", "access_rules", "cors"]
    /// Policies and shaping of a route, at `/api/v1/routes/{route}/policies/{policy}`.
    static let routePolicies = [
        "rate_limit", "max_in_flight", "access_rules", "cors", "strip_prefix", "rewrite", "host", "request_headers", "response_headers",
    ]
    /// Top-level settings, at `/api/v1/settings/{setting}`.
    static let settings = ["access_rules", "cc", "trusted_proxies"]
    /// What a route may do besides proxying to a service (edited with the route itself).
    static let routeActions = ["redirect", "respond", "static"]

    /// The schema of every name in the three lists.
    static var document: ConfigDocument {
        let all: [(String, ConfigDocument)] = [
            ("health_check", healthCheck), ("passive_health", passiveHealth), ("circuit_breaker", circuitBreaker),
            ("rate_limit", rateLimit), ("max_in_flight", integer("Most requests in flight at once (all event loops together).", minimum: 1)),
            ("when_no_node", string("What to do when every node is ejected or down.", choices: NoNodePolicy.allCases.map(\.rawValue), defaultValue: NoNodePolicy.reject.rawValue)),
            ("access_rules", accessRules), ("cors", cors),
            ("strip_prefix", string("Removed from the start of the path at a segment boundary before the node sees it (e.g. /api).")),
            ("rewrite", object("The path a regular expression matches is replaced by 'to' ($1... its groups); the query is kept.", [
                ("path_regex", string("The regular expression, searched in the path (anchor it with ^ and $).")),
                ("to", string("The new path, starting with / ($1...$9, $path, $host, $client_ip).")),
            ], required: ["path_regex", "to"])),
            ("host", string("The Host sent to the node instead of the client's (host or host:port).")),
            ("request_headers", headerEdits("Fields of the request sent to the node.")),
            ("response_headers", headerEdits("Fields of the response sent to the client.")),
            ("cc", list(object("A CC rule: requests it counts go over 'limit' within 'window' and the key is banned for 'ban'.", [
                ("name", string("Unique; labels the metrics and the bans.")),
                ("key", string("What is counted: client_ip, header:NAME, cookie:NAME or query:NAME.", defaultValue: "client_ip")),
                ("match", conditions("Which requests count (all when empty).")),
                ("limit", integer("Requests allowed per window and event loop.", minimum: 1)),
                ("window", duration("The sliding window.")),
                ("ban", duration("How long an over-limit key is refused.")),
                ("status", integer("The status of a refusal.", minimum: 400, maximum: 599, defaultValue: 429)),
            ], required: ["name", "limit", "window", "ban"]), "Flood protection, before routing.")),
            ("trusted_proxies", stringList("Addresses or CIDR ranges whose X-Forwarded-For is believed for the client address.")),
            ("redirect", object("Answer with a redirect; nothing is proxied.", [
                ("to", string("The Location ($path, $path_and_query, $host, $1... of the route's path_regex).")),
                ("status", integer("301, 302, 303, 307 or 308.", minimum: 301, maximum: 308, defaultValue: 302)),
            ], required: ["to"])),
            ("respond", object("Answer with a fixed response; nothing is proxied.", [
                ("status", integer("The status (not a 3xx: use a redirect).", minimum: 200, maximum: 599)),
                ("body", string("The body.")),
                ("content_type", string("The Content-Type.", defaultValue: FixedResponse(status: 200).contentType)),
            ], required: ["status"])),
            ("static", object("Serve files from a directory (GET and HEAD).", [
                ("root", string("The directory served.")),
                ("index", string("The file served for a directory.", defaultValue: StaticFiles(root: "").index)),
            ], required: ["root"])),
        ]
        return .mapping([
            .init("type", .string("object")),
            .init("description", .string("The JSON Schema of each policy and setting, by name.")),
            .init("properties", .mapping(all.map { .init($0.0, $0.1) })),
        ])
    }

    private static var healthCheck: ConfigDocument {
        let base = ActiveHealthCheck()
        return object("Active probes of every node.", [
            ("type", string("http or tcp.", choices: ActiveHealthCheck.Kind.allCases.map(\.rawValue), defaultValue: base.kind.rawValue)),
            ("interval", duration("Between probes of a node.", defaultValue: base.interval)),
            ("timeout", duration("A probe slower than this fails.", defaultValue: base.timeout)),
            ("method", string("The probe's method.", defaultValue: base.method)),
            ("path", string("The probe's path.", defaultValue: base.path)),
            ("host", string("The probe's Host (default: the node's address).")),
            ("headers", fieldMap("Fields added to the probe.")),
            ("raw_request", string("A whole request sent instead (tcp probes: bytes to send).")),
            ("expected_statuses", json("Statuses that count as healthy: numbers or ranges such as \"200-399\".")),
            ("body_contains", string("Text the response body must contain.")),
            ("healthy_threshold", integer("Successes in a row that bring a node back.", minimum: 1, maximum: 100, defaultValue: base.thresholds.healthy)),
            ("unhealthy_threshold", integer("Failures in a row that take a node out.", minimum: 1, maximum: 100, defaultValue: base.thresholds.unhealthy)),
        ])
    }

    private static var passiveHealth: ConfigDocument {
        let base = OutlierDetection.Policy()
        return object("Ejection of nodes that fail real traffic.", [
            ("consecutive_failures", integer("Failures in a row that eject a node.", minimum: 1, maximum: 1000, defaultValue: base.consecutiveFailures)),
            ("base_ejection", duration("The first ejection; each one after is longer.", defaultValue: base.baseEjection)),
            ("max_ejection", duration("The longest ejection.", defaultValue: base.maxEjection)),
            ("max_ejected_percent", integer("Most of the service's nodes ejected at once.", minimum: 0, maximum: 100, defaultValue: base.maxEjectedPercent)),
            ("failure_statuses", integerList("Statuses that count as failures (500-599).", defaultValue: [502, 503, 504])),
        ])
    }

    private static var circuitBreaker: ConfigDocument {
        let base = CircuitBreaker.Policy()
        return object("Stops sending to a failing service for a while.", [
            ("window", duration("The window failures are counted over (whole seconds).", defaultValue: base.window)),
            ("minimum_requests", integer("Requests in the window before the circuit can open.", minimum: 1, maximum: 1_000_000, defaultValue: base.minimumRequests)),
            ("failure_ratio", number("Share of failures that opens the circuit (0-1, or 50%).", minimum: 0, maximum: 1, defaultValue: base.failureRatio)),
            ("slow_threshold", duration("A response slower than this counts as slow.")),
            ("slow_ratio", number("Share of slow responses that opens the circuit.", minimum: 0, maximum: 1, defaultValue: base.slowRatio)),
            ("cool_down", duration("How long the circuit stays open.", defaultValue: base.coolDown)),
            ("trial_requests", integer("Requests let through half-open.", minimum: 1, maximum: 1000, defaultValue: base.trialRequests)),
            ("failure_statuses", integerList("Statuses that count as failures.", defaultValue: [502, 503, 504])),
        ])
    }

    private static var rateLimit: ConfigDocument {
        object("A rate limit, per key.", [
            ("algorithm", string("How requests are counted.", choices: RateLimit.Algorithm.Kind.allCases.map(\.rawValue), defaultValue: RateLimit.Algorithm.Kind.tokenBucket.rawValue)),
            ("rate", number("Requests per second (token and leaky bucket).", minimum: 0)),
            ("burst", integer("Requests above the rate let through at once (token bucket).", minimum: 1)),
            ("max_delay", duration("How long an excess request may wait (leaky bucket).")),
            ("limit", integer("Requests per window (sliding window).", minimum: 1)),
            ("window", duration("The window (sliding window).")),
            ("key", string("client_ip, route, service, header:NAME, cookie:NAME or query:NAME.", defaultValue: "client_ip")),
            ("max_keys", integer("Keys tracked per event loop.", minimum: 1, defaultValue: 100_000)),
            ("body", string("The body of a 429.")),
        ])
    }

    private static func conditions(_ description: String) -> ConfigDocument {
        object(description, [
            ("client_ip", stringList("Addresses or CIDR ranges (IPv4 and IPv6).")),
            ("path", json("The path: \"/x\", [\"/a\", \"/b\"], {\"prefix\": \"/a\"} or {\"regex\": \"...\"}.")),
            ("methods", stringList("Methods, upper case.")),
            ("host", json("The host, as for path.")),
            ("header", json("Field name → value, as for path, e.g. {\"User-Agent\": {\"regex\": \"(?i)sqlmap\"}}.")),
            ("cookie", json("Cookie name → value, as for path.")),
            ("query", json("Parameter name → value (decoded), as for path.")),
        ])
    }

    private static var accessRules: ConfigDocument {
        list(object("An access rule: allow rules are checked first and let a request skip the deny rules of their scope.", [
            ("name", string("Unique; labels the metrics and log lines.")),
            ("allow", conditions("Requests that match skip this scope's deny rules.")),
            ("deny", conditions("Requests that match are refused (or only logged).")),
            ("action", string("What a deny rule does.", choices: AccessRule.Action.allCases.map(\.rawValue), defaultValue: AccessRule.Action.block.rawValue)),
            ("status", integer("The status of a refusal.", minimum: 400, maximum: 599, defaultValue: 403)),
            ("body", string("The body of a refusal (default: the error page).")),
        ], required: ["name"]), "Rules evaluated for every request of their scope, in order.")
    }

    private static var cors: ConfigDocument {
        let base = CORSPolicy(origins: [])
        return object("Cross-origin requests: preflights answered by Fulcrum.", [
            ("origins", stringList("Allowed origins (https://app.example.com), or *.")),
            ("methods", stringList("Methods a preflight may ask for.", defaultValue: base.methods)),
            ("headers", stringList("Request fields a preflight may ask for (* for any).")),
            ("expose_headers", stringList("Response fields scripts may read.")),
            ("credentials", boolean("Whether cookies may be sent (not with *).", defaultValue: base.credentials)),
            ("max_age", duration("How long browsers keep a preflight's answer.")),
        ], required: ["origins"])
    }

    private static func headerEdits(_ description: String) -> ConfigDocument {
        object(description, [
            ("set", fieldMap("Replaced (any field of that name removed, this one added); values may use $path, $host, $client_ip...")),
            ("add", fieldMap("Added beside those present.")),
            ("remove", stringList("Removed.")),
        ])
    }

    // MARK: building blocks

    private static func described(_ type: String, _ description: String, _ extra: [ConfigDocument.Member] = []) -> ConfigDocument {
        .mapping([.init("type", .string(type)), .init("description", .string(description))] + extra)
    }

    private static func string(_ description: String, choices: [String]? = nil, defaultValue: String? = nil) -> ConfigDocument {
        var extra: [ConfigDocument.Member] = []
        if let choices { extra.append(.init("enum", .list(choices.map(ConfigDocument.string)))) }
        if let defaultValue { extra.append(.init("default", .string(defaultValue))) }
        return described("string", description, extra)
    }

    private static func duration(_ description: String, defaultValue: Duration? = nil) -> ConfigDocument {
        var extra: [ConfigDocument.Member] = [.init("format", .string("duration")), .init("pattern", .string("^[0-9]+(ms|s|m|h)$"))]
        if let defaultValue { extra.append(.init("default", .string(ConfigDuration.format(defaultValue)))) }
        return described("string", description + " A duration: 500ms, 10s, 5m, 1h.", extra)
    }

    private static func integer(_ description: String, minimum: Int? = nil, maximum: Int? = nil, defaultValue: Int? = nil) -> ConfigDocument {
        var extra: [ConfigDocument.Member] = []
        if let minimum { extra.append(.init("minimum", .int(minimum))) }
        if let maximum { extra.append(.init("maximum", .int(maximum))) }
        if let defaultValue { extra.append(.init("default", .int(defaultValue))) }
        return described("integer", description, extra)
    }

    private static func number(_ description: String, minimum: Double? = nil, maximum: Double? = nil, defaultValue: Double? = nil) -> ConfigDocument {
        var extra: [ConfigDocument.Member] = []
        if let minimum { extra.append(.init("minimum", .number(String(minimum)))) }
        if let maximum { extra.append(.init("maximum", .number(String(maximum)))) }
        if let defaultValue { extra.append(.init("default", .number(String(defaultValue)))) }
        return described("number", description, extra)
    }

    private static func boolean(_ description: String, defaultValue: Bool) -> ConfigDocument {
        described("boolean", description, [.init("default", .bool(defaultValue))])
    }

    private static func stringList(_ description: String, defaultValue: [String]? = nil) -> ConfigDocument {
        var extra: [ConfigDocument.Member] = [.init("items", .mapping([.init("type", .string("string"))]))]
        if let defaultValue { extra.append(.init("default", .list(defaultValue.map(ConfigDocument.string)))) }
        return described("array", description, extra)
    }

    private static func integerList(_ description: String, defaultValue: [Int]) -> ConfigDocument {
        described("array", description, [
            .init("items", .mapping([.init("type", .string("integer"))])), .init("default", .list(defaultValue.map(ConfigDocument.int))),
        ])
    }

    private static func fieldMap(_ description: String) -> ConfigDocument {
        described("object", description, [.init("additionalProperties", .mapping([.init("type", .string("string"))]))])
    }

    /// A value written as JSON (matchers, ranges): a string, a list or an object.
    private static func json(_ description: String) -> ConfigDocument {
        .mapping([.init("description", .string(description)), .init("x-fulcrum-json", .bool(true))])
    }

    private static func object(_ description: String, _ properties: [(String, ConfigDocument)], required: [String] = []) -> ConfigDocument {
        var members: [ConfigDocument.Member] = [
            .init("properties", .mapping(properties.map { .init($0.0, $0.1) })), .init("additionalProperties", .bool(false)),
        ]
        if !required.isEmpty { members.append(.init("required", .list(required.map(ConfigDocument.string)))) }
        return described("object", description, members)
    }

    private static func list(_ items: ConfigDocument, _ description: String) -> ConfigDocument {
        described("array", description, [.init("items", items)])
    }
}
