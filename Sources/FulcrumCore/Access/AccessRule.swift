/// `access_rules[]`: a named condition on requests and what happens to those that meet it.
/// Rules live at three scopes, evaluated in this order: the top level (every request, before
/// routing), a service (requests routed to it), a route. In each scope, allow rules come first:
/// a request one of them matches skips the deny rules of that scope (the original system's white
/// list); then the deny rules in order, the first one that matches deciding.
public struct AccessRule: Sendable, Equatable {
    public enum Effect: String, Sendable, Equatable {
        case allow, deny
    }

    /// What a matching deny rule does.
    public enum Action: String, Sendable, Equatable, CaseIterable {
        /// Answer with ``status`` and ``body``; the request never reaches a node.
        case block
        /// Count and log the hit only; the request goes on.
        case log
    }

    public var name: String
    public var effect: Effect
    public var conditions: RequestConditions
    public var action: Action = .block
    public var status: Int = 403
    /// The body of the refusal; `nil` uses the error page of ``status``.
    public var body: String?

    public init(name: String, effect: Effect, conditions: RequestConditions) {
        self.name = name
        self.effect = effect
        self.conditions = conditions
    }
}

/// Conditions on a request, all of which must hold (the ones absent always do). Used by access
/// rules and by the `match` of CC rules.
public struct RequestConditions: Sendable, Equatable {
    /// The client's address is in one of these ranges (see `trusted_proxies`).
    public var clientIP: [AddressRange] = []
    /// The normalised path (without the query).
    public var path: ValueMatcher?
    /// The method is one of these (upper case).
    public var methods: [String] = []
    /// The host without its port, compared without case for exact values.
    public var host: ValueMatcher?
    /// Any value of any field of that name matches.
    public var headers: [NamedMatcher] = []
    /// Any cookie of that name, in any `Cookie` field, matches.
    public var cookies: [NamedMatcher] = []
    /// Any parameter of that name (names and values percent-decoded, `+` as space) matches.
    public var query: [NamedMatcher] = []

    public init() {}

    public var isEmpty: Bool {
        clientIP.isEmpty && path == nil && methods.isEmpty && host == nil && headers.isEmpty && cookies.isEmpty && query.isEmpty
    }
}

/// A header, cookie or query parameter name and the values that satisfy it.
public struct NamedMatcher: Sendable, Equatable {
    public var name: String
    public var matcher: ValueMatcher

    public init(name: String, matcher: ValueMatcher) {
        self.name = name
        self.matcher = matcher
    }
}

/// How a value is matched: `value` or `[a, b]` (equal to one of them), `{ prefix: ... }`,
/// `{ regex: ... }` (searches the value; anchor it with `^` and `$`).
public enum ValueMatcher: Sendable, Equatable {
    case exact([String])
    case prefix(String)
    case regex(String)
}

/// `cc[]`: protection against floods from one key (by default one client address). Requests the
/// rule's `match` selects are counted per key in a sliding window on each event loop; a key that
/// goes over ``limit`` within ``window`` is banned for ``ban`` on every loop, and its requests are
/// answered with ``status`` and `Retry-After` without being counted or proxied.
public struct CCRule: Sendable, Equatable {
    public var name: String
    public var key: RateLimit.Key
    /// Which requests count; `nil`: all.
    public var match: RequestConditions?
    public var limit: Int
    public var window: Duration
    public var ban: Duration
    public var status: Int = 429

    public init(name: String, key: RateLimit.Key = .clientIP, match: RequestConditions? = nil, limit: Int, window: Duration, ban: Duration) {
        self.name = name
        self.key = key
        self.match = match
        self.limit = limit
        self.window = window
        self.ban = ban
    }
}
