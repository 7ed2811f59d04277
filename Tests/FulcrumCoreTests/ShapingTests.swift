import Testing
@testable import FulcrumCore

/// Values with variables, and the shaping, redirect and respond fields of routes: what they
/// make of a request, and the errors `check` gives for each field.
@Suite struct ShapingTests {
    private func config(_ routes: String) throws(ConfigError) -> FulcrumConfig {
        try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9001 }] } }
            routes:
            \(routes)
            """)
    }

    private func issues(_ routes: String) -> [String] {
        do {
            _ = try config(routes)
            return []
        } catch {
            return error.issues.map { "\($0.path): \($0.message)" }
        }
    }

    @Test func aTemplateSplitsIntoLiteralsAndVariables() throws {
        let template = try ValueTemplate(parsing: "https://$host/x${path}y/$1$$", captures: 1)
        #expect(template.parts == [.literal("https://"), .host, .literal("/x"), .path, .literal("y/"), .capture(1), .literal("$")])
        let request = TestRequest("GET", "/a?q=1", host: "example.com:8080")
        #expect(template.rendered(request, path: "/b", captures: ["g"]) == "https://example.com/x/by/g$")
        let both = try ValueTemplate(parsing: "$path_and_query|$query|$client_ip", captures: 0)
        #expect(both.rendered(request, path: "/b") == "/b?q=1|q=1|127.0.0.1")
        #expect(try ValueTemplate(parsing: "plain", captures: 0).literal == "plain")
    }

    @Test func anUnknownVariableOrAMissingGroupIsAnErrorNotAnEmptyString() {
        #expect(throws: ConfigValueError.self) { try ValueTemplate(parsing: "$paht", captures: 0) }
        do {
            _ = try ValueTemplate(parsing: "/x/$paht", captures: 0)
        } catch {
            #expect(error.reason.contains("unknown variable '$paht' (did you mean '$path'?)"))
        }
        do {
            _ = try ValueTemplate(parsing: "/x/$2", captures: 1)
        } catch {
            #expect(error.reason == "'$2' refers to group 2, and the regular expression has 1")
        }
        #expect(throws: ConfigValueError.self) { try ValueTemplate(parsing: "cost: 5$", captures: 0) }
        #expect(throws: ConfigValueError.self) { try ValueTemplate(parsing: "${host", captures: 0) }
    }

    @Test func groupsAreCountedAsTheExpressionDefinesThem() throws {
        #expect(try PathPattern.groupCount("^/a/(\\d+)/(?:x|y)/(?<name>[a-z]+)[(]\\($").get() == 2)
        #expect(try PathPattern.groupCount("(?=a)(?!b)(c)").get() == 1)
        #expect(throws: ConfigValueError.self) { try PathPattern.groupCount("(unclosed").get() }
    }

    @Test func aPrefixIsStrippedOnlyAtASegmentBoundary() {
        #expect(RequestShaper.strip("/api", from: "/api/users") == "/users")
        #expect(RequestShaper.strip("/api", from: "/api") == "/")
        #expect(RequestShaper.strip("/api", from: "/apix") == "/apix")
        #expect(RequestShaper.strip("/api/", from: "/api/users") == "/users")
        #expect(RequestShaper.strip("/api", from: "/other/api") == "/other/api")
    }

    @Test func shapingRendersThePathAndFieldsOfARequest() throws {
        let config = try config("""
              - name: orders
                match: { path_prefix: /open-api/ }
                service: s
                strip_prefix: /open-api
                rewrite: { path_regex: '^/orders/(\\d+)$', to: '/v2/orders/$1' }
                request_headers: { set: { X-Order: "$1" }, remove: [Cookie] }
                response_headers: { add: { X-Path: "$path" } }
            """)
        let route = config.routes[0]
        let shaper = RequestShaper(route.shaping, routePathRegex: nil)
        let shaped = shaper.shape(TestRequest("GET", "/open-api/orders/7?x=1"))
        #expect(shaped.path == "/v2/orders/7")
        #expect(shaped.addedRequestFields.map { "\($0.name)=\($0.value)" } == ["X-Order=7"])
        #expect(shaped.removedRequestFields == ["Cookie", "X-Order"])
        #expect(shaped.addedResponseFields.map { "\($0.name)=\($0.value)" } == ["X-Path=/v2/orders/7"])
        #expect(shaper.shape(TestRequest("GET", "/elsewhere")).path == nil)  // nothing to strip, no match: unchanged
    }

    @Test func redirectAndRespondAreActionsOfTheirOwn() throws {
        let config = try config("""
              - { name: old, match: { path_prefix: /old/ }, redirect: { to: 'https://example.com$path', status: 308 } }
              - { name: down, match: { path_prefix: /beta/ }, respond: { status: 503, body: "back soon" } }
            """)
        guard case .redirect(let redirect) = config.routes[0].action, case .respond(let response) = config.routes[1].action else {
            Issue.record("expected a redirect and a fixed response")
            return
        }
        #expect(redirect.status == 308 && redirect.to.source == "https://example.com$path")
        #expect(response == FixedResponse(status: 503, body: "back soon"))
        #expect(config.routes[0].target == nil)
        let router = Router(config: config)
        #expect(router.route(TestRequest("GET", "/old/x")) == .local(route: 0))
        let report = RouteReport(config: config, request: TestRequest("GET", "/old/x?y=1"))
        #expect(report.response == "308 redirect to https://example.com/old/x")
        #expect(report.text.contains("answered by Fulcrum: 308 redirect to https://example.com/old/x"))
    }

    @Test func checkNamesTheFieldOfEveryShapingMistake() {
        let found = issues("""
              - name: a
                match: { path_prefix: /a/ }
                service: s
                strip_prefix: a
                rewrite: { path_regex: '^/(x)$', to: 'v2/$1' }
                host: "bad host"
                request_headers: { set: { Content-Length: "5", X-Forwarded-For: "1.2.3.4", "bad name": x, X-Ok: "$nope" } }
                response_headers: { remove: [Transfer-Encoding] }
              - { name: b, service: s, redirect: { to: /x } }
              - { name: c, redirect: { to: '/x/$1', status: 200 } }
              - { name: d, respond: { status: 302 }, rate_limit: { requests: 1, per: 1s } }
              - { name: e, rewrite: { path_regex: '(', to: /x }, service: s }
              - { name: f, service: s, cors: { origins: ['*', 'https://a.example/path', ftp://b], credentials: true } }
            """)
        var expected = [
            "routes[0].strip_prefix: a prefix to strip starts with '/' and is more than '/'",
            "routes[0].rewrite.to: a rewritten path starts with '/' (or $path)",
            "routes[0].host: 'bad host' is not a host name or address (with an optional :port)",
            "routes[0].request_headers.set.Content-Length: 'Content-Length' cannot be changed here: it frames the body, and Fulcrum writes it for the body it sends",
            "routes[0].request_headers.set.X-Forwarded-For: 'X-Forwarded-For' cannot be changed here: Fulcrum sets it from the connection, so that a node can trust it",
            "routes[0].request_headers.set.bad name: 'bad name' is not a valid header name",
            "routes[0].response_headers.remove[0]: 'Transfer-Encoding' cannot be changed here: it frames the body, and Fulcrum writes it for the body it sends",
            "routes[1]: a route has one of service, split, redirect, respond and static; this one has service and redirect",
            "routes[2].redirect.to: '$1' refers to a group of a regular expression, and this value has none (variables: $path, $query, $path_and_query, $host, $client_ip)",
            "routes[2].redirect.status: 200 is out of range 300...399",
            "routes[3].respond.status: use 'redirect' for a 3xx response: it sets the Location",
            "routes[3].rate_limit: a route that answers itself (respond) sends nothing to a node",
        ]
        expected += [
            "routes[5].cors.origins: 'https://a.example/path' is not an origin (scheme://host[:port], no path) or '*'",
            "routes[5].cors.origins: 'ftp://b' is not an origin (scheme://host[:port], no path) or '*'",
            "routes[5].cors.credentials: credentials cannot be allowed for origin '*': browsers refuse it; list the origins",
        ]
        for line in expected { #expect(found.contains(line), "missing: \(line)\nfound: \(found.joined(separator: "\n"))") }
        #expect(found.contains { $0.hasPrefix("routes[0].request_headers.set.X-Ok: unknown variable '$nope'") })
        #expect(found.contains { $0.hasPrefix("routes[4].rewrite.path_regex: not a valid regular expression") })
    }
}
