/// Where the router sends a request.
public struct RouteDecision: Sendable, Equatable {
    /// The index of the matched route in ``FulcrumConfig/routes``, or `nil` for the default target.
    public var routeIndex: Int?
    /// The index of the target service in ``FulcrumConfig/services``.
    public var serviceIndex: Int
    /// The node the route pins to, when it does.
    public var pinnedNode: Int?
}

/// What the router made of a request.
public enum Routed: Sendable, Equatable {
    /// The request goes to a service.
    case service(RouteDecision)
    /// The route at this index answers the request itself (`redirect`, `respond`).
    case local(route: Int)

    /// The decision, when the request goes to a service.
    public var decision: RouteDecision? {
        if case .service(let decision) = self { return decision }
        return nil
    }

    /// The index of the route taken, `nil` for the default target.
    public var routeIndex: Int? {
        switch self {
        case .service(let decision): return decision.routeIndex
        case .local(let route): return route
        }
    }
}

/// The routes of a configuration compiled into lookup structures.
///
/// Matching order:
/// 1. routes with an exact `path` equal to the request path, in declaration order;
/// 2. routes with a `path_prefix` of the request path, longest prefix first (equal prefixes in
///    declaration order); routes without a path condition count as the prefix `/`;
/// 3. routes with a `path_regex` that matches the path, in declaration order;
/// 4. the `default` target.
/// Within each step a candidate is taken only when all its other conditions (host, methods,
/// headers, query, cookies) hold. Steps 1 and 2 cost one walk down a byte trie, whatever the
/// number of routes.
///
/// A class: the data plane routes through the router of the configuration in use, and a struct
/// read from there was copied for each request (a retain of each of its tables).
public final class Router: Sendable {
    struct CompiledRoute: Sendable {
        let name: String
        let kind: PathKind
        let predicates: RoutePredicates
        let pattern: PathPattern?
        /// `nil` for a route that answers itself.
        let serviceIndex: Int?
        let pinnedNode: Int?
        /// The route's path condition, for routes matched outside the tree (body routes).
        let path: PathMatch?
        let body: BodyMatcher?
    }

    enum PathKind: String, Sendable {
        case exact, prefix, regex
    }

    let routes: [CompiledRoute]
    private let tree: PrefixTree
    private let regexRoutes: [Int]
    /// Routes with a body condition, in declaration order: tried only when no other route
    /// takes the request (``bodyCandidates(_:)``, ``route(_:body:)``).
    private let bodyRoutes: [Int]
    private let defaultDecision: Routed?

    /// Compiles the routes of a validated configuration.
    public init(config: FulcrumConfig) {
        var tree = PrefixTree()
        var regexRoutes: [Int] = []
        var routes: [CompiledRoute] = []
        func resolve(_ target: RouteTarget) -> (Int, Int?) {
            let serviceIndex = config.services.firstIndex { $0.name == target.service }!
            return (serviceIndex, target.node.flatMap { config.services[serviceIndex].nodeIndex(named: $0) })
        }
        var bodyRoutes: [Int] = []
        for (index, route) in config.routes.enumerated() {
            let (serviceIndex, pinned) = route.target.map(resolve) ?? (nil, nil)
            let kind: PathKind
            var pattern: PathPattern? = nil
            let hasBody = route.match.body != nil
            if hasBody { bodyRoutes.append(index) }
            switch route.match.path {
            case .exact(let path):
                kind = .exact
                if !hasBody { tree.insert(path, route: index, exact: true) }
            case .prefix(let prefix):
                kind = .prefix
                if !hasBody { tree.insert(prefix, route: index, exact: false) }
            case nil:
                kind = .prefix
                if !hasBody { tree.insert("/", route: index, exact: false) }
            case .regex(let source):
                kind = .regex
                pattern = try? PathPattern(source)  // validated when parsed
                if !hasBody { regexRoutes.append(index) }
            }
            routes.append(CompiledRoute(
                name: route.name, kind: kind, predicates: RoutePredicates(route.match), pattern: pattern,
                serviceIndex: serviceIndex, pinnedNode: pinned, path: route.match.path, body: route.match.body.map(BodyMatcher.init)))
        }
        self.routes = routes
        self.tree = tree
        self.regexRoutes = regexRoutes
        self.bodyRoutes = bodyRoutes
        self.defaultDecision = config.defaultTarget.map { target in
            let (serviceIndex, pinned) = resolve(target)
            return .service(RouteDecision(routeIndex: nil, serviceIndex: serviceIndex, pinnedNode: pinned))
        }
    }

    /// The decision for `request`, or `nil` when nothing matches and there is no default.
    public func route<Request: RoutingRequest>(_ request: Request) -> Routed? {
        let (deepest, isExact) = tree.deepestMatch(request.path.utf8)
        let nodes = tree.nodes
        if isExact {
            for index in nodes[deepest].exactRoutes where routes[index].predicates.mismatch(request) == nil {
                return decision(index)
            }
        }
        var node = deepest
        while node >= 0 {
            for index in nodes[node].prefixRoutes where routes[index].predicates.mismatch(request) == nil {
                return decision(index)
            }
            node = nodes[node].parent
        }
        for index in regexRoutes {
            let route = routes[index]
            if route.pattern?.matches(request.path) == true, route.predicates.mismatch(request) == nil {
                return decision(index)
            }
        }
        return defaultDecision
    }

    /// Whether some route has a body condition.
    public var hasBodyRoutes: Bool { !bodyRoutes.isEmpty }

    /// The body routes whose other conditions hold for `request`, in declaration order: the
    /// ones its body must be read for, when ``route(_:)`` found no other route.
    public func bodyCandidates<Request: RoutingRequest>(_ request: Request) -> [Int] {
        bodyRoutes.filter { pathMatches(routes[$0], request.path) && routes[$0].predicates.mismatch(request) == nil }
    }

    /// The most bytes of body any of `candidates` reads.
    public func bodyLimit(_ candidates: [Int]) -> Int {
        candidates.reduce(0) { max($0, routes[$1].body?.maxBytes ?? 0) }
    }

    /// The first of `candidates` whose body condition holds for `body`.
    public func route(_ candidates: [Int], body: [UInt8]) -> Routed? {
        candidates.first { routes[$0].body?.matches(body) == true }.map(decision)
    }

    private func pathMatches(_ route: CompiledRoute, _ path: Substring) -> Bool {
        switch route.path {
        case .exact(let exact)?: return path == exact
        case .prefix(let prefix)?: return path.hasPrefix(prefix)
        case .regex?: return route.pattern?.matches(path) == true
        case nil: return true
        }
    }

    /// The name of the route at `routeIndex`, `default` for the default target (`nil`).
    public func routeName(_ routeIndex: Int?) -> String {
        routeIndex.map { routes[$0].name } ?? "default"
    }

    private func decision(_ index: Int) -> Routed {
        guard let serviceIndex = routes[index].serviceIndex else { return .local(route: index) }
        return .service(RouteDecision(routeIndex: index, serviceIndex: serviceIndex, pinnedNode: routes[index].pinnedNode))
    }

    /// Every route in match order with the reason it was or was not taken, for `fulcrum route`
    /// and the admin API. Not for the hot path.
    /// Body routes come last: taken by `body` when no other route matched, rejected without a body.
    public func explain<Request: RoutingRequest>(_ request: Request, body: [UInt8]? = nil) -> RouteExplanation {
        var ordered: [Int] = []
        let (deepest, isExact) = tree.deepestMatch(request.path.utf8)
        if isExact { ordered += tree.nodes[deepest].exactRoutes }
        var node = deepest
        while node >= 0 {
            ordered += tree.nodes[node].prefixRoutes
            node = tree.nodes[node].parent
        }
        ordered += regexRoutes
        var pathMatched = Set(ordered.filter { routes[$0].kind != .regex || routes[$0].pattern?.matches(request.path) == true })
        ordered += routes.indices.filter { !ordered.contains($0) && routes[$0].body == nil }
        pathMatched.formUnion(bodyRoutes.filter { pathMatches(routes[$0], request.path) })
        ordered += bodyRoutes

        var steps: [RouteExplanation.Step] = []
        var chosen: Routed? = nil
        for index in ordered {
            let route = routes[index]
            let outcome: RouteExplanation.Outcome
            if !pathMatched.contains(index) {
                outcome = .rejected(.path)
            } else if let mismatch = route.predicates.mismatch(request) {
                outcome = .rejected(mismatch)
            } else if let matcher = route.body, !(body.map(matcher.matches) ?? false) {
                outcome = .rejected(body == nil ? .bodyNotGiven : .body)
            } else if chosen == nil {
                outcome = .matched
                chosen = decision(index)
            } else {
                outcome = .shadowed
            }
            steps.append(.init(routeIndex: index, routeName: route.name, pathKind: route.kind.rawValue, outcome: outcome))
        }
        return RouteExplanation(steps: steps, decision: chosen ?? defaultDecision, usedDefault: chosen == nil && defaultDecision != nil)
    }
}

/// The router's reasoning for one request: each route in match order and what happened to it.
public struct RouteExplanation: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// This route serves the request.
        case matched
        /// This route's conditions reject the request.
        case rejected(RouteMismatch)
        /// This route would match but an earlier one already did.
        case shadowed
    }

    public struct Step: Sendable {
        public var routeIndex: Int
        public var routeName: String
        /// `exact`, `prefix` or `regex`.
        public var pathKind: String
        public var outcome: Outcome
    }

    public var steps: [Step]
    /// The final decision, or `nil` for 404.
    public var decision: Routed?
    /// True when no route matched and the default target was used.
    public var usedDefault: Bool
}
