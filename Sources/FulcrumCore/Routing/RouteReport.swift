/// Where a request would go and why, worked out without sending anything: the answer of
/// `fulcrum route` and of the admin API's route explanation (as ``text`` and ``document``).
public struct RouteReport: Sendable {
    /// One route in match order and what it made of the request.
    public struct Step: Sendable, Equatable {
        public var route: String
        /// `exact`, `prefix` or `regex`.
        public var pathKind: String
        /// `MATCH`, or why not.
        public var verdict: String
        public var matched: Bool
    }

    /// The request line, e.g. `GET /api/users?lang=zh`.
    public var request: String
    public var steps: [Step]
    /// The route that serves the request (`default` for the default target); `nil` for 404.
    public var route: String?
    /// For a route with a traffic split: the target chosen and why (random draws use a fixed seed).
    public var split: String?
    /// The service and its strategy; `nil` for 404.
    public var service: String?
    public var strategy: String?
    /// The node, when it is decided by the request alone (pinned, or hashed on a key the request has).
    public var node: String?
    /// How the node is chosen.
    public var nodeReason: String?
    /// For a route that answers itself: the response (`redirect 301 to ...`, `respond 503`).
    public var response: String?
    /// For a route with shaping: what the node is sent that differs from the request.
    public var shaping: [String] = []
    /// What the access rules and CC rules make of the request: the rules that match, in the
    /// order they are evaluated.
    public var access: [String] = []
    /// The status an access rule refuses the request with; `nil` when none does.
    public var refusedWith: Int?

    public init(config: FulcrumConfig, request: DescribedRequest) {
        let router = Router(config: config)
        let explanation = router.explain(request, body: request.body)
        self.request = "\(request.method) \(request.path)\(request.query.isEmpty ? "" : "?" + request.query)"
        steps = explanation.steps.map { step in
            let verdict: String
            switch step.outcome {
            case .matched: verdict = "MATCH"
            case .shadowed: verdict = "would match, but an earlier route already did"
            case .rejected(let reason): verdict = "no: \(reason)"
            }
            return Step(route: step.routeName, pathKind: step.pathKind, verdict: verdict, matched: step.outcome == .matched)
        }
        let client = IPAddress(parsing: request.clientIP) ?? .unspecified
        if evaluateAccess(config.accessRules, "global", request, client) { return }
        for rule in config.cc where rule.match.map({ ConditionsMatcher($0).matches(request, client: client) }) ?? true {
            access.append("counted by CC rule '\(rule.name)' (\(rule.limit) per \(ConfigDuration.format(rule.window)), then banned for \(ConfigDuration.format(rule.ban)))")
        }
        guard let routed = explanation.decision else { return }
        route = explanation.usedDefault ? "default" : router.routeName(routed.routeIndex)
        if let service = routed.decision?.serviceIndex,
            evaluateAccess(config.services[service].accessRules, "service \(config.services[service].name)", request, client)
        {
            return
        }
        if let routeIndex = routed.routeIndex, evaluateAccess(config.routes[routeIndex].accessRules, "route \(config.routes[routeIndex].name)", request, client) {
            return
        }
        if let routeIndex = routed.routeIndex {
            let configured = config.routes[routeIndex]
            let shaped = RequestShaper(route: configured).shape(request)
            let path = shaped.path.map { $0[...] } ?? request.path[...]
            if !configured.shaping.isEmpty { shaping = Self.describe(shaped, configured.shaping) }
            if let cors = configured.cors ?? configured.target.flatMap({ config.service(named: $0.service)?.cors }) {
                let origin = request.header("origin")
                let verdict = origin.map { cors.allows(origin: $0) ? "origin \($0) allowed" : "origin \($0) not allowed: no CORS fields" } ?? "no Origin"
                shaping.append("CORS for \(cors.origins.joined(separator: ", ")) (preflights answered by Fulcrum): \(verdict)")
            }
            switch configured.action {
            case .redirect(let redirect):
                let location = redirect.to.rendered(request, path: path, captures: shaped.captures)
                response = "\(redirect.status) redirect to \(location)"
                return
            case .respond(let fixed):
                response = "\(fixed.status), \(fixed.body.utf8.count) bytes of \(fixed.contentType)"
                return
            case .serveFiles(let files):
                switch StaticFiles.relativePath(path) {
                case .success(let relative): response = "the file \(relative.isEmpty ? "." : relative) under \(files.root) (404 if there is none)"
                case .failure(let refusal): response = "400: \(refusal.reason)"
                }
                return
            case .proxy:
                break
            }
        }
        guard let decision = routed.decision else { return }
        var service = config.services[decision.serviceIndex]
        var random = FastRandom(seed: 0)
        var group: (Int) -> Bool = { _ in true }
        if let routeIndex = decision.routeIndex, let traffic = config.routes[routeIndex].split {
            let choice = SplitDecider(split: traffic).decide(request, random: &random)
            let target = traffic.targets[choice.target]
            split = "\(target.name) (\(choice.reason)\(target.tags.isEmpty ? "" : "; nodes tagged \(target.tags.joined(separator: ", "))"))"
            if let chosen = config.service(named: target.service) { service = chosen }
            let tags = target.tags
            let nodes = service.nodes
            group = { node in tags.allSatisfy(nodes[node].tags.contains) }
        }
        self.service = service.name
        strategy = service.strategy.name
        func describe(_ node: Node) -> String { "\(node.name) (\(node.host):\(node.port))" }
        if let pinned = decision.pinnedNode {
            node = describe(service.nodes[pinned])
            nodeReason = "pinned by the route"
            return
        }
        var balancer = ServiceBalancer(service: service)
        let pick = balancer.pick(for: request, random: &random, isEligible: group).map { service.nodes[$0] }
        switch service.strategy {
        case .pinned:
            node = pick.map(describe)
            nodeReason = "the service pins every request"
        case .hash(let key):
            if ServiceBalancer.keyValue(key, of: request) != nil {
                node = pick.map(describe)
                nodeReason = "hash of \(key); the same key always gets this node"
            } else {
                nodeReason = "any, by weight (the request has no \(key), so hashing falls back to weighted random)"
            }
        case .roundRobin, .random, .leastConnections, .latency:
            let weights = service.nodes.map { "\($0.name)=\($0.effectiveWeight)" }.joined(separator: ", ")
            nodeReason = "chosen per request by \(service.strategy.name) over \(weights); a fresh balancer picks \(pick.map(describe) ?? "none")"
        }
    }

    /// Adds the matching rules of one scope to ``access``; returns whether one refuses the request.
    private mutating func evaluateAccess(_ rules: [AccessRule], _ scope: String, _ request: DescribedRequest, _ client: IPAddress) -> Bool {
        guard !rules.isEmpty else { return false }
        var hits = Array(repeating: 0, count: rules.count)
        var candidates: [Int] = []
        let verdict = AccessRules(rules).evaluate(request, client: client, hits: &hits, candidates: &candidates)
        for (index, rule) in rules.enumerated() where hits[index] > 0 {
            switch (rule.effect, rule.action) {
            case (.allow, _): access.append("allowed by access rule '\(rule.name)' (\(scope)): the \(scope) deny rules are skipped")
            case (.deny, .log): access.append("logged by access rule '\(rule.name)' (\(scope))")
            case (.deny, .block): access.append("refused with \(rule.status) by access rule '\(rule.name)' (\(scope))")
            }
        }
        guard case .deny(let index) = verdict else { return false }
        refusedWith = rules[index].status
        return true
    }

    private static func describe(_ shaped: RequestShaper.Shaped, _ shaping: RequestShaping) -> [String] {
        var lines: [String] = []
        if let path = shaped.path { lines.append("path sent to the node: \(path)") }
        if let host = shaping.host { lines.append("Host sent to the node: \(host)") }
        for name in shaped.removedRequestFields where !shaping.requestHeaders.set.contains(where: { $0.name == name }) {
            lines.append("request field removed: \(name)")
        }
        for field in shaped.addedRequestFields { lines.append("request field set: \(field.name): \(field.value)") }
        for name in shaped.removedResponseFields where !shaping.responseHeaders.set.contains(where: { $0.name == name }) {
            lines.append("response field removed: \(name)")
        }
        for field in shaped.addedResponseFields { lines.append("response field set: \(field.name): \(field.value)") }
        return lines
    }

    /// The report as lines of text.
    public var text: String {
        var lines = [request, "routes in match order:"]
        for step in steps { lines.append("  \(step.route) [\(step.pathKind)] \(step.verdict)") }
        if steps.isEmpty { lines.append("  (no routes)") }
        for line in access { lines.append("access: \(line)") }
        if let refusedWith {
            lines.append("result: \(refusedWith), refused by an access rule")
            return lines.joined(separator: "\n")
        }
        guard let route else {
            lines.append("result: 404, no route matches and there is no default")
            return lines.joined(separator: "\n")
        }
        lines.append("route: \(route)")
        for line in shaping { lines.append("  \(line)") }
        if let response {
            lines.append("answered by Fulcrum: \(response)")
            return lines.joined(separator: "\n")
        }
        guard let service, let strategy else { return lines.joined(separator: "\n") }
        if let split { lines.append("split: \(split)") }
        lines.append("service: \(service) (strategy \(strategy))")
        if let node { lines.append("node: \(node) (\(nodeReason ?? ""))") } else { lines.append("node: \(nodeReason ?? "")") }
        return lines.joined(separator: "\n")
    }

    /// The report as a JSON-ready document.
    public var document: ConfigDocument {
        func optional(_ text: String?) -> ConfigDocument { text.map(ConfigDocument.string) ?? .null }
        return .mapping([
            .init("request", .string(request)),
            .init("steps", .list(steps.map { step in
                .mapping([
                    .init("route", .string(step.route)), .init("path_kind", .string(step.pathKind)),
                    .init("matched", .bool(step.matched)), .init("verdict", .string(step.verdict)),
                ])
            })),
            .init("status", refusedWith.map(ConfigDocument.int) ?? (route == nil ? .int(404) : .null)),
            .init("access", .list(access.map(ConfigDocument.string))),
            .init("route", optional(route)), .init("split", optional(split)), .init("service", optional(service)), .init("strategy", optional(strategy)),
            .init("node", optional(node)), .init("node_reason", optional(nodeReason)),
            .init("response", optional(response)), .init("shaping", .list(shaping.map(ConfigDocument.string))),
        ])
    }
}
