import Testing
@testable import FulcrumCore

@Suite struct RouterTests {
    static func config(routes: String, extra: String = "") throws -> FulcrumConfig {
        try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services:
              a: { nodes: [{ name: a1, host: 127.0.0.1, port: 9001 }, { name: a2, host: 127.0.0.1, port: 9002 }] }
              b: { nodes: [{ name: b1, host: 127.0.0.1, port: 9003 }] }
            routes:
            \(routes)
            \(extra)
            """)
    }

    func routeName(_ router: Router, _ config: FulcrumConfig, _ request: DescribedRequest) -> String? {
        guard let decision = router.route(request) else { return nil }
        return decision.routeIndex.map { config.routes[$0].name } ?? "default"
    }

    @Test func exactBeatsPrefixBeatsRegexAndLongestPrefixWins() throws {
        let config = try Self.config(routes: """
              - { name: re, match: { path_regex: '^/api/' }, service: a }
              - { name: short, match: { path_prefix: /api/ }, service: a }
              - { name: long, match: { path_prefix: /api/users/ }, service: b }
              - { name: exact, match: { path: /api/users/me }, service: b }
              - { name: re-only, match: { path_regex: '\\.png$' }, service: b }
            """, extra: "default: { service: a }")
        let router = Router(config: config)
        #expect(routeName(router, config, TestRequest("GET", "/api/users/me")) == "exact")
        #expect(routeName(router, config, TestRequest("GET", "/api/users/me?x=1")) == "exact")
        #expect(routeName(router, config, TestRequest("GET", "/api/users/you")) == "long")
        #expect(routeName(router, config, TestRequest("GET", "/api/users")) == "short")
        #expect(routeName(router, config, TestRequest("GET", "/api/")) == "short")
        #expect(routeName(router, config, TestRequest("GET", "/img/logo.png")) == "re-only")
        #expect(routeName(router, config, TestRequest("GET", "/elsewhere")) == "default")
    }

    @Test func predicatesFallThroughToTheNextCandidate() throws {
        let config = try Self.config(routes: """
              - name: admin
                match: { path_prefix: /api/admin/, methods: [GET, POST], headers: { X-Tenant: acme } }
                service: b
              - name: v1
                match: { path_regex: '^/v[0-9]+/', query: { lang: zh }, cookies: { beta: "1" } }
                service: b
                node: b1
              - name: host
                match: { host: ['*.example.com', example.org], path_prefix: / }
                service: b
              - { name: api, match: { path_prefix: /api/ }, service: a }
            """)
        let router = Router(config: config)
        #expect(routeName(router, config, TestRequest("GET", "/api/admin/x", headers: [("x-tenant", "acme")])) == "admin")
        #expect(routeName(router, config, TestRequest("DELETE", "/api/admin/x", headers: [("X-Tenant", "acme")])) == "api")
        #expect(routeName(router, config, TestRequest("GET", "/api/admin/x", headers: [("X-Tenant", "other")])) == "api")
        #expect(routeName(router, config, TestRequest("GET", "/v2/x?lang=zh", headers: [("Cookie", "a=b; beta=1")])) == "v1")
        #expect(routeName(router, config, TestRequest("GET", "/v2/x?lang=en", headers: [("Cookie", "beta=1")])) == nil)
        #expect(routeName(router, config, TestRequest("GET", "/v2/x?lang=zh")) == nil)
        // a prefix route is tried before any regex route
        #expect(routeName(router, config, TestRequest("GET", "/api/v2/x?lang=zh", headers: [("Cookie", "beta=1")])) == "api")
        #expect(routeName(router, config, TestRequest("GET", "/other", host: "WWW.Example.com")) == "host")
        #expect(routeName(router, config, TestRequest("GET", "/other", host: "example.org")) == "host")
        #expect(routeName(router, config, TestRequest("GET", "/other", host: "example.com")) == nil)
        #expect(routeName(router, config, TestRequest("GET", "/other", host: "badexample.com")) == nil)
        let pinned = router.route(TestRequest("GET", "/v9/?lang=zh", headers: [("Cookie", "beta=1")]))?.decision
        #expect(pinned?.serviceIndex == 1 && pinned?.pinnedNode == 0)
    }

    @Test func queryValuesArePercentDecoded() throws {
        let config = try Self.config(routes: "  - { name: q, match: { query: { name: 'a b/c' } }, service: a }")
        let router = Router(config: config)
        #expect(routeName(router, config, TestRequest("GET", "/x?name=a+b%2Fc")) == "q")
        #expect(routeName(router, config, TestRequest("GET", "/x?name=a%20b%2fc&z")) == "q")
        #expect(routeName(router, config, TestRequest("GET", "/x?name=a%2")) == nil)
        #expect(routeName(router, config, TestRequest("GET", "/x?names=a+b%2Fc")) == nil)
    }

    @Test func explanationListsEveryRouteWithItsReason() throws {
        let config = try Self.config(routes: """
              - { name: exact, match: { path: /a/b, methods: [POST] }, service: a }
              - { name: prefix, match: { path_prefix: /a/ }, service: b }
              - { name: again, match: { path_prefix: /a }, service: a }
              - { name: re, match: { path_regex: '^/z' }, service: a }
            """)
        let explanation = Router(config: config).explain(TestRequest("GET", "/a/b"))
        #expect(explanation.steps.map(\.routeName) == ["exact", "prefix", "again", "re"])
        #expect(explanation.steps.map(\.outcome) == [.rejected(.method), .matched, .shadowed, .rejected(.path)])
        #expect(explanation.decision?.routeIndex == 1)
        #expect(!explanation.usedDefault)
    }

    @Test func tenThousandPrefixRoutesStillResolveCorrectly() throws {
        var routes = ""
        for i in 0..<10_000 { routes += "  - { name: r\(i), match: { path_prefix: /svc/\(i)/ }, service: \(i % 2 == 0 ? "a" : "b") }\n" }
        let config = try Self.config(routes: routes)
        let router = Router(config: config)
        for i in [0, 1, 77, 4_999, 9_999] {
            #expect(routeName(router, config, TestRequest("GET", "/svc/\(i)/deep/path")) == "r\(i)")
        }
        #expect(routeName(router, config, TestRequest("GET", "/svc/10000/")) == nil)
        #expect(routeName(router, config, TestRequest("GET", "/svc/1")) == nil)
    }

    @Test func prefixTreeSplitsSharedLabels() {
        var tree = PrefixTree()
        tree.insert("/api/users", route: 0, exact: false)
        tree.insert("/api/", route: 1, exact: false)
        tree.insert("/apple", route: 2, exact: true)
        tree.insert("/api/users", route: 3, exact: true)
        let deep = tree.deepestMatch("/api/users"[...].utf8)
        #expect(deep.isExact && tree.nodes[deep.node].exactRoutes == [3] && tree.nodes[deep.node].prefixRoutes == [0])
        let mid = tree.deepestMatch("/api/orders"[...].utf8)
        #expect(!mid.isExact && tree.nodes[mid.node].prefixRoutes == [1])
        let apple = tree.deepestMatch("/apple"[...].utf8)
        #expect(apple.isExact && tree.nodes[apple.node].exactRoutes == [2])
        let partial = tree.nodes[tree.deepestMatch("/ap"[...].utf8).node]
        #expect(partial.exactRoutes.isEmpty && partial.prefixRoutes.isEmpty)
    }
}

/// Routes with a body condition: tried after the others, in declaration order.
@Suite struct BodyRouteTests {
    static let config = try! FulcrumConfig.parse("""
        listen: [{ port: 8080 }]
        services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9001 }] } }
        routes:
          - { name: by-regex, match: { path_prefix: /api/, body: { regex: 'acme', max_bytes: 100 } }, service: s }
          - { name: by-json, match: { path_prefix: /api/, body: { json: { path: items.1.sku, equals: "42" } } }, service: s }
          - { name: plain, match: { path_prefix: /api/plain }, service: s }
        """)

    @Test func bodyRoutesAreCandidatesOnlyWhereTheirOtherConditionsHold() throws {
        let router = Router(config: Self.config)
        #expect(router.route(TestRequest("POST", "/api/x")) == nil)
        #expect(router.route(TestRequest("POST", "/api/plain"))?.routeIndex == 2)
        let candidates = router.bodyCandidates(TestRequest("POST", "/api/x"))
        #expect(candidates == [0, 1])
        #expect(router.bodyCandidates(TestRequest("POST", "/other")).isEmpty)
        #expect(router.bodyLimit(candidates) == BodyCondition.defaultMaxBytes)
        #expect(router.route(candidates, body: Array(#"{"tenant":"acme"}"#.utf8))?.routeIndex == 0)
        #expect(router.route(candidates, body: Array(#"{"items":[{"sku":1},{"sku":42}]}"#.utf8))?.routeIndex == 1)
        #expect(router.route(candidates, body: Array(#"{"items":[{"sku":42}]}"#.utf8)) == nil)
        #expect(router.route(candidates, body: Array("{broken".utf8)) == nil)
    }

    @Test func theExplanationUsesAGivenBodyAndSaysWhenNoneWasGiven() throws {
        var request = TestRequest("POST", "/api/x")
        let without = RouteReport(config: Self.config, request: request)
        #expect(without.route == nil)
        #expect(without.steps.first { $0.route == "by-regex" }?.verdict == "no: the route looks at the body, and none was given")
        request.body = Array("acme inside".utf8)
        let with = RouteReport(config: Self.config, request: request)
        #expect(with.route == "by-regex")
        #expect(with.steps.first { $0.route == "by-json" }?.verdict == "no: body does not match")
    }
}
