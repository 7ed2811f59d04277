import FulcrumCore
import Logging
import NIOCore
import NIOHTTP1

/// One event loop's access rules and CC protection: evaluates the rules of each scope for a
/// request, counts every rule's hits, counts CC keys in their windows and keeps this loop's copy
/// of the bans (see ``BanBoard``). Like ``LoopPolicy``, which owns it, it reads no clock and
/// does no I/O, and a configuration without rules costs a request nothing here: the callers
/// only come in when the scope has rules.
final class AccessGuard {
    private(set) var runtime: RuntimeConfig
    private let logger: Logger
    private let banBoard: BanBoard?
    /// Scratch space for ``AccessRules/evaluate(_:client:hits:candidates:)``.
    private var candidates: [Int] = []
    /// Hits per rule since the configuration was installed: top-level, per service, per route.
    private(set) var globalHits: [Int] = []
    private(set) var serviceHits: [[Int]] = []
    private(set) var routeHits: [[Int]] = []
    /// The same counts when they were last logged.
    private var loggedHits: [[Int]] = []
    /// Per CC rule: the window of each key on this loop.
    private var ccWindows: [KeyedLimiter] = []
    /// Per CC rule: keys banned (by this loop's count going over) and requests refused by bans.
    private(set) var ccBans: [Int] = []
    private(set) var ccRefused: [Int] = []
    /// This loop's copy of the board's bans: until when (monotonic nanoseconds).
    private var bans: [BanBoard.Key: UInt64] = [:]

    init(runtime: RuntimeConfig, logger: Logger, banBoard: BanBoard?) {
        self.runtime = runtime
        self.logger = logger
        self.banBoard = banBoard
        candidates.reserveCapacity(64)
        install(runtime)
    }

    /// Follows a new configuration: hit counts start again; CC windows of rules that keep their
    /// name and settings, and every ban, carry over.
    func install(_ new: RuntimeConfig) {
        let previous = runtime.config.cc
        let oldWindows = ccWindows
        runtime = new
        let config = new.config
        globalHits = Array(repeating: 0, count: config.accessRules.count)
        serviceHits = config.services.map { Array(repeating: 0, count: $0.accessRules.count) }
        routeHits = config.routes.map { Array(repeating: 0, count: $0.accessRules.count) }
        loggedHits = [globalHits] + serviceHits + routeHits
        ccWindows = config.cc.map { rule in
            if let index = previous.firstIndex(of: rule), index < oldWindows.count { return oldWindows[index] }
            return KeyedLimiter(limit: RateLimit(algorithm: .slidingWindow(limit: rule.limit, window: rule.window), key: rule.key))
        }
        ccBans = Array(repeating: 0, count: config.cc.count)
        ccRefused = Array(repeating: 0, count: config.cc.count)
        let names = Set(config.cc.map(\.name))
        bans = bans.filter { names.contains($0.key.rule) }
    }

    // MARK: screening

    /// The top-level rules, then CC: before routing, so that nothing the rules refuse is routed,
    /// counted by a limit or proxied.
    func screenBeforeRouting(_ request: HeadRoutingRequest, clientIP: String, client: IPAddress, now: UInt64) -> LoopPolicy.Refusal? {
        if let rules = runtime.globalAccess, case .deny(let index) = rules.evaluate(request, client: client, hits: &globalHits, candidates: &candidates) {
            return refusal(rules.rules[index], routed: nil)
        }
        guard !runtime.config.cc.isEmpty else { return nil }
        return screenCC(request, clientIP: clientIP, client: client, now: now)
    }

    /// The rules of the service the request goes to, then of its route.
    func screen(_ request: HeadRoutingRequest, client: IPAddress, service: Int?, routed: Routed) -> LoopPolicy.Refusal? {
        if let service, let rules = runtime.serviceAccess[service],
            case .deny(let index) = rules.evaluate(request, client: client, hits: &serviceHits[service], candidates: &candidates)
        {
            return refusal(rules.rules[index], routed: routed)
        }
        if let route = routed.routeIndex, let rules = runtime.routeAccess[route],
            case .deny(let index) = rules.evaluate(request, client: client, hits: &routeHits[route], candidates: &candidates)
        {
            return refusal(rules.rules[index], routed: routed)
        }
        return nil
    }

    /// Whether the scopes of a service and a route have rules (the caller's fast path).
    func hasRules(service: Int?, route: Int?) -> Bool {
        (service.map { runtime.serviceAccess[$0] != nil } ?? false) || (route.map { runtime.routeAccess[$0] != nil } ?? false)
    }

    private func refusal(_ rule: AccessRule, routed: Routed?) -> LoopPolicy.Refusal {
        LoopPolicy.Refusal(
            status: HTTPResponseStatus(statusCode: rule.status), routed: routed, detail: "refused by access rule '\(rule.name)'",
            body: rule.body)
    }

    private func screenCC(_ request: HeadRoutingRequest, clientIP: String, client: IPAddress, now: UInt64) -> LoopPolicy.Refusal? {
        for (index, rule) in runtime.config.cc.enumerated() {
            if let matcher = runtime.ccMatchers[index], !matcher.matches(request, client: client) { continue }
            let key = LoopPolicy.limitKey(rule.key, request, clientIP)
            let banKey = BanBoard.Key(rule: rule.name, key: key)
            if let until = bans[banKey] {
                if until > now {
                    ccRefused[index] += 1
                    return banned(rule, secondsLeft: until - now)
                }
                bans[banKey] = nil
            }
            guard case .limited(.rejected) = ccWindows[index].acquire(key: key, now: now) else { continue }
            let until = now + UInt64(rule.ban.nanoseconds)
            bans[banKey] = until
            ccWindows[index].forget(key: key)  // counted afresh once the ban is over
            ccBans[index] += 1
            ccRefused[index] += 1
            logger.warning("CC rule banned a key", metadata: [
                "rule": "\(rule.name)", "key": "\(key)", "limit": "\(rule.limit)", "window": "\(rule.window)", "ban": "\(rule.ban)",
            ])
            banBoard?.ban(BanBoard.Ban(key: banKey, until: until))
            return banned(rule, secondsLeft: until - now)
        }
        return nil
    }

    private func banned(_ rule: CCRule, secondsLeft nanoseconds: UInt64) -> LoopPolicy.Refusal {
        let seconds = max(1, (nanoseconds + 999_999_999) / 1_000_000_000)
        return LoopPolicy.Refusal(
            status: HTTPResponseStatus(statusCode: rule.status), routed: nil,
            detail: "too many requests; banned by rule '\(rule.name)' for \(seconds) s", extraHeaders: [("Retry-After", String(seconds))])
    }

    // MARK: bans and housekeeping

    /// A ban made or lifted on any loop (through the board).
    /// Either way the key's count on this loop starts afresh.
    func apply(_ change: BanBoard.Change) {
        let key: BanBoard.Key
        switch change {
        case .banned(let ban):
            key = ban.key
            bans[key] = max(bans[key] ?? 0, ban.until)
        case .lifted(let lifted):
            key = lifted
            bans[key] = nil
        }
        if let index = runtime.config.cc.firstIndex(where: { $0.name == key.rule }) { ccWindows[index].forget(key: key.key) }
    }

    /// Once a second: expired bans and idle CC keys go, and the deny rules that matched during
    /// the second are logged, one line per rule with its count (a flood does not flood the log).
    func sweep(now: UInt64) {
        if !bans.isEmpty { bans = bans.filter { $0.value > now } }
        for index in ccWindows.indices { ccWindows[index].sweep(now: now) }
        guard runtime.globalAccess != nil || runtime.serviceAccess.contains(where: { $0 != nil }) || runtime.routeAccess.contains(where: { $0 != nil })
        else { return }
        let config = runtime.config
        let scopes: [(rules: [AccessRule], hits: [Int], scope: String)] =
            [(config.accessRules, globalHits, "global")]
            + zip(config.services, serviceHits).map { ($0.accessRules, $1, "service \($0.name)") }
            + zip(config.routes, routeHits).map { ($0.accessRules, $1, "route \($0.name)") }
        for (scopeIndex, scope) in scopes.enumerated() where scope.hits != loggedHits[scopeIndex] {
            for (index, rule) in scope.rules.enumerated() where rule.effect == .deny && scope.hits[index] != loggedHits[scopeIndex][index] {
                logger.notice(rule.action == .block ? "access rule refused requests" : "access rule matched requests", metadata: [
                    "rule": "\(rule.name)", "scope": "\(scope.scope)", "count": "\(scope.hits[index] - loggedHits[scopeIndex][index])",
                    "period": "1s",
                ])
            }
            loggedHits[scopeIndex] = scope.hits
        }
    }
}
