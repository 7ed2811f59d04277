import Testing
@testable import FulcrumCore

@Suite struct ConfigParsingTests {
    static let sample = """
        listen: [{ address: 0.0.0.0, port: 8080 }]
        services:
          users:
            strategy: round_robin
            nodes:
              - { name: users-a, host: 127.0.0.1, port: 9001, weight: 3 }
              - { name: users-b, host: 127.0.0.1, port: 9002, weight: 1, tags: [canary] }
          search:
            strategy: hash
            hash_key: header:X-User
            nodes:
              - { name: s1, host: localhost, port: 9101 }
        routes:
          - name: admin-api
            match: { path_prefix: /api/admin/, methods: [GET, POST], headers: { X-Tenant: acme } }
            service: users
          - name: v1
            match: { path_regex: '^/api/v[0-9]+/', query: { lang: zh }, cookies: { beta: "1" } }
            service: users
            node: users-b
        default: { service: users }
        errors:
          503: { body: "busy", content_type: text/plain }
        """

    @Test func parsesTheDocumentedSample() throws {
        let config = try FulcrumConfig.parse(Self.sample)
        #expect(config.listeners == [Listener(address: "0.0.0.0", port: 8080)])
        #expect(config.services.map(\.name) == ["users", "search"])
        #expect(config.services[0].nodes[0] == Node(name: "users-a", host: "127.0.0.1", port: 9001, weight: 3))
        #expect(config.services[0].nodes[1].tags == ["canary"])
        #expect(config.services[1].strategy == .hash(.header("X-User")))
        #expect(config.routes[0].match.path == .prefix("/api/admin/"))
        #expect(config.routes[0].match.methods == ["GET", "POST"])
        #expect(config.routes[0].match.headers == [ValueCondition(name: "X-Tenant", values: ["acme"])])
        #expect(config.routes[1].match.path == .regex("^/api/v[0-9]+/"))
        #expect(config.routes[1].target == RouteTarget(service: "users", node: "users-b"))
        #expect(config.routes[1].match.cookies == [ValueCondition(name: "beta", values: ["1"])])
        #expect(config.defaultTarget == RouteTarget(service: "users"))
        #expect(config.errorPages[503] == ErrorPage(contentType: "text/plain", body: "busy"))
        #expect(config.timeouts == Timeouts())
        #expect(config.accessLog)
    }

    @Test func jsonIsTheSameModel() throws {
        let json = """
            {"listen": [{"address": "0.0.0.0", "port": 8080}],
             "services": {"users": {"strategy": "round_robin", "nodes": [
                {"name": "users-a", "host": "127.0.0.1", "port": 9001, "weight": 3},
                {"name": "users-b", "host": "127.0.0.1", "port": 9002, "weight": 1, "tags": ["canary"]}]},
              "search": {"strategy": "hash", "hash_key": "header:X-User", "nodes": [{"name": "s1", "host": "localhost", "port": 9101}]}},
             "routes": [
               {"name": "admin-api", "match": {"path_prefix": "/api/admin/", "methods": ["GET", "POST"], "headers": {"X-Tenant": "acme"}}, "service": "users"},
               {"name": "v1", "match": {"path_regex": "^/api/v[0-9]+/", "query": {"lang": "zh"}, "cookies": {"beta": "1"}}, "service": "users", "node": "users-b"}],
             "default": {"service": "users"},
             "errors": {"503": {"body": "busy", "content_type": "text/plain"}}}
            """
        #expect(try FulcrumConfig.parse(json) == FulcrumConfig.parse(Self.sample))
    }

    @Test func durationsAndTopLevelSettings() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            workers: 2
            max_connections: 5000
            max_connections_per_client: 50
            access_log: false
            request_id_header: X-Trace
            drain_timeout: 1.5s
            timeouts: { connect: 250ms, upstream_response: 2m, client_idle: 10, upstream_idle: 1h, client_stall: 5s, upstream_stall: 90s, tunnel_idle: 2h }
            services: { a: { nodes: [{ name: n, host: 10.0.0.1, port: 1 }] } }
            """)
        #expect(config.workers == 2)
        #expect(config.maxConnections == 5000)
        #expect(config.maxConnectionsPerClient == 50)
        #expect(!config.accessLog)
        #expect(config.requestIDHeader == "X-Trace")
        #expect(config.drainTimeout == .milliseconds(1500))
        #expect(config.timeouts == Timeouts(
            connect: .milliseconds(250), upstreamResponse: .seconds(120), clientIdle: .seconds(10), upstreamIdle: .seconds(3600),
            clientStall: .seconds(5), upstreamStall: .seconds(90), tunnelIdle: .seconds(7200)))
        #expect(config.listeners == [Listener(address: "0.0.0.0", port: 80)])
    }

    private func issues(_ text: String) -> [ConfigIssue] {
        do {
            _ = try FulcrumConfig.parse(text)
            return []
        } catch {
            return error.issues
        }
    }

    @Test func reportsEveryErrorWithPathAndLine() {
        let found = issues("""
            listen: [{ port: 70000 }]
            services:
              users:
                strategy: round_robin
                nodes:
                  - { name: a, host: 127.0.0.1, port: 9001, wieght: 2 }
                  - { name: a, host: 127.0.0.1, port: "x" }
            routes:
              - name: r0
                match: { path_prefix: /x }
                service: users
              - name: r1
                match: { path_regex: '^/api/(v1' }
                service: users
              - name: r2
                match: { path: /y }
                service: nope
              - name: r2
                service: users
                node: ghost
            """)
        let rendered = found.map(\.description)
        #expect(rendered.contains("listen[0].port (line 1): 70000 is out of range 0...65535"))
        #expect(rendered.contains("services.users.nodes[0].wieght (line 6): unknown field (did you mean 'weight'?)"))
        #expect(rendered.contains("services.users.nodes[1].port (line 7): expected a whole number, found a string"))
        #expect(rendered.contains { $0.hasPrefix("routes[1].match.path_regex (line 13): invalid regular expression") })
        #expect(rendered.contains("routes[2].service (line 17): no service named 'nope'"))
        #expect(rendered.contains("routes[3].name (line 18): route name 'r2' is used twice"))
        #expect(rendered.contains("routes[3].node (line 20): service 'users' has no node 'ghost'"))
        let duplicate = issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1}, {name: a, host: h, port: 2}] } }")
        #expect(duplicate.map(\.description) == ["services.s.nodes[1].name (line 2): node name 'a' is used twice in service 's'"])
        let noConnections = issues("listen: [{port: 1}]\nmax_connections: 0\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }")
        #expect(noConnections.map(\.description) == ["max_connections (line 2): 0 is out of range 1...10000000"])
        let noShare = issues("listen: [{port: 1}]\nmax_connections_per_client: -3\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }")
        #expect(noShare.map(\.description) == ["max_connections_per_client (line 2): -3 is out of range 1...10000000"])
    }

    @Test func rejectsStructuralMistakes() {
        #expect(issues("services: {}").map(\.description).contains("listen (line 1): is required"))
        #expect(issues("listen: 80\nservices: {}").contains { $0.path == "listen" && $0.message == "expected a list, found a number" })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [] } }").contains { $0.path == "services.s.nodes" && $0.message.contains("at least one node") })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1, weight: 0}] } }").contains {
            $0.path == "services.s.nodes" && $0.message.contains("weight 0")
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { strategy: fastest, nodes: [{name: a, host: h, port: 1}] } }").contains {
            $0.path == "services.s.strategy" && $0.message.contains("not one of round_robin")
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { strategy: hash, nodes: [{name: a, host: h, port: 1}] } }").contains {
            $0.path == "services.s.hash_key" && $0.message == "is required"
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { strategy: pinned, pinned_node: z, nodes: [{name: a, host: h, port: 1}] } }").contains {
            $0.path == "services.s.pinned_node" && $0.message.contains("no node 'z'")
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: 'bad host', port: 1}] } }").contains {
            $0.path == "services.s.nodes[0].host"
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }\nroutes: [{name: r, service: s, match: {path: /a, path_prefix: /b}}]").contains {
            $0.path == "routes[0].match" && $0.message.contains("only one of")
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }\nroutes: [{name: r, service: s, match: {path_prefix: x}}]").contains {
            $0.path == "routes[0].match.path_prefix" && $0.message == "must start with '/'"
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }\ntimeouts: {connect: soon}").contains {
            $0.path == "timeouts.connect"
        })
        #expect(issues("listen: [{port: 1}]\nservices: { s: { nodes: [{name: a, host: h, port: 1}] } }\nerrors: {200: {body: x}}").contains {
            $0.path == "errors.200"
        })
    }

    @Test func syntaxAndDuplicateKeyErrorsCarryLines() {
        let syntax = issues("listen: [{ port: 80 }\nservices: {}")
        #expect(syntax.count == 1 && syntax[0].line != nil && syntax[0].message.hasPrefix("syntax error"))
        let duplicate = issues("listen: [{ port: 80 }]\nlisten: [{ port: 81 }]\nservices: {}")
        #expect(duplicate.count == 1 && duplicate[0].message.contains("duplicate key 'listen'"))
    }

    @Test func durationFormatRoundTrips() {
        for text in ["250ms", "2s", "1m", "1h"] {
            #expect(ConfigDuration.format(ConfigDuration.parse(text)!) == text)
        }
        #expect(ConfigDuration.parse("-1s") == nil)
        #expect(ConfigDuration.parse("fast") == nil)
    }
}

@Suite struct PassiveHealthConfigTests {
    @Test func passiveHealthAndNoNodePolicyParse() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services:
              s:
                passive_health: { consecutive_failures: 3, base_ejection: 10s, max_ejection: 2m, max_ejected_percent: 30, failure_statuses: [500, 503] }
                when_no_node: panic
                nodes: [{ name: a, host: h, port: 1 }]
              t: { nodes: [{ name: a, host: h, port: 1 }] }
            """)
        let health = try #require(config.services[0].passiveHealth)
        #expect(health.policy == OutlierDetection.Policy(consecutiveFailures: 3, baseEjection: .seconds(10), maxEjection: .seconds(120), maxEjectedPercent: 30))
        #expect(health.failureStatuses == [500, 503])
        #expect(config.services[0].whenNoNode == .panic)
        #expect(config.services[1].passiveHealth == nil)
        #expect(config.services[1].whenNoNode == .reject)
    }

    @Test func passiveHealthErrorsNameTheField() {
        do {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services:
                  s:
                    passive_health: { consecutive_failures: 0, base_ejection: 1m, max_ejection: 10s, failure_statuses: [404], retries: 2 }
                    when_no_node: shrug
                    nodes: [{ name: a, host: h, port: 1 }]
                """)
            Issue.record("expected errors")
        } catch {
            let rendered = error.issues.map(\.description)
            #expect(rendered.contains("services.s.passive_health.retries (line 4): unknown field"))
            #expect(rendered.contains("services.s.passive_health.consecutive_failures (line 4): 0 is out of range 1...1000"))
            #expect(rendered.contains("services.s.passive_health.max_ejection (line 4): must not be shorter than base_ejection"))
            #expect(rendered.contains("services.s.passive_health.failure_statuses[0] (line 4): 404 is out of range 500...599"))
            #expect(rendered.contains { $0.hasPrefix("services.s.when_no_node (line 5): 'shrug' is not one of reject, panic") })
        }
    }
}

@Suite struct ActiveHealthConfigTests {
    @Test func serviceChecksMergeOverTheTopLevelDefaults() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            health_check_defaults: { interval: 10s, timeout: 2s, path: /healthz, unhealthy_threshold: 5 }
            services:
              web:
                health_check: { expected_statuses: [200, 300-302], body_contains: ok, headers: { X-Probe: "1" } }
                nodes: [{ name: a, host: h, port: 1 }]
              db:
                health_check: { type: tcp, interval: 1s, timeout: 500ms }
                nodes: [{ name: a, host: h, port: 1 }]
              plain: { nodes: [{ name: a, host: h, port: 1 }] }
            """)
        let web = try #require(config.services[0].healthCheck)
        #expect(web.kind == .http && web.interval == .seconds(10) && web.timeout == .seconds(2) && web.path == "/healthz")
        #expect(web.thresholds == ProbeHealth.Thresholds(healthy: 2, unhealthy: 5))
        #expect(web.expectedStatuses == [200...200, 300...302])
        #expect(web.accepts(status: 301) && !web.accepts(status: 204))
        #expect(web.bodyContains == "ok")
        #expect(web.headers == [ValueCondition(name: "X-Probe", values: ["1"])])
        let db = try #require(config.services[1].healthCheck)
        #expect(db.kind == .tcp && db.interval == .seconds(1) && db.timeout == .milliseconds(500))
        #expect(config.services[2].healthCheck == nil)
    }

    @Test func healthCheckErrorsNameTheField() {
        do {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services:
                  s:
                    health_check: { type: udp, interval: 1s, timeout: 2s, path: healthz, expected_statuses: [200-100, 700], healthy_threshold: 0 }
                    nodes: [{ name: a, host: h, port: 1 }]
                  t:
                    health_check: { type: tcp, path: /x }
                    nodes: [{ name: a, host: h, port: 1 }]
                """)
            Issue.record("expected errors")
        } catch {
            let rendered = error.issues.map(\.description)
            #expect(rendered.contains { $0.hasPrefix("services.s.health_check.type (line 4): 'udp' is not one of http, tcp") })
            #expect(rendered.contains("services.s.health_check.timeout (line 4): must not be longer than the interval (1s)"))
            #expect(rendered.contains("services.s.health_check.path (line 4): must start with '/' and contain no spaces or line breaks"))
            #expect(rendered.contains("services.s.health_check.expected_statuses[0] (line 4): '200-100' is not a status (100-599) or a range such as 200-299"))
            #expect(rendered.contains("services.s.health_check.expected_statuses[1] (line 4): '700' is not a status (100-599) or a range such as 200-299"))
            #expect(rendered.contains("services.s.health_check.healthy_threshold (line 4): 0 is out of range 1...100"))
            #expect(rendered.contains("services.t.health_check.path (line 7): only used with type: http"))
        }
    }
}

@Suite struct CircuitBreakerConfigTests {
    @Test func circuitBreakerSettingsParse() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services:
              s:
                circuit_breaker: { window: 5s, minimum_requests: 10, failure_ratio: 25%, slow_threshold: 800ms, slow_ratio: 0.9, cool_down: 15s, trial_requests: 4, failure_statuses: [500, 502] }
                nodes: [{ name: a, host: h, port: 1 }]
            """)
        let breaker = try #require(config.services[0].circuitBreaker)
        #expect(breaker.policy == CircuitBreaker.Policy(
            window: .seconds(5), minimumRequests: 10, failureRatio: 0.25, slowThreshold: .milliseconds(800), slowRatio: 0.9,
            coolDown: .seconds(15), trialRequests: 4))
        #expect(breaker.failureStatuses == [500, 502])
    }

    @Test func circuitBreakerErrorsNameTheField() {
        do {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services:
                  s:
                    circuit_breaker: { window: 1.5s, failure_ratio: 150%, slow_ratio: 0, trial_requests: 0 }
                    nodes: [{ name: a, host: h, port: 1 }]
                """)
            Issue.record("expected errors")
        } catch {
            let rendered = error.issues.map(\.description)
            #expect(rendered.contains("services.s.circuit_breaker.window (line 4): must be a whole number of seconds"))
            #expect(rendered.contains("services.s.circuit_breaker.failure_ratio (line 4): '150%' is not a ratio above 0 and at most 1 (or 100%)"))
            #expect(rendered.contains("services.s.circuit_breaker.slow_ratio (line 4): '0' is not a ratio above 0 and at most 1 (or 100%)"))
            #expect(rendered.contains("services.s.circuit_breaker.trial_requests (line 4): 0 is out of range 1...1000"))
        }
    }
}

@Suite struct RateLimitConfigTests {
    @Test func rateLimitsAndConcurrencyLimitsParse() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services:
              s:
                rate_limit: { algorithm: sliding_window, limit: 600, window: 1m, key: service }
                max_in_flight: 100
                nodes: [{ name: a, host: h, port: 1 }]
            routes:
              - { name: t, service: s, rate_limit: { rate: 10, burst: 20, key: header:X-User, max_keys: 5000, body: "no" } }
              - { name: l, service: s, max_in_flight: 2, rate_limit: { algorithm: leaky_bucket, rate: 5, max_delay: 200ms, key: cookie:sid } }
              - { name: d, service: s, rate_limit: { rate: 3 } }
            """)
        #expect(config.services[0].rateLimit == RateLimit(algorithm: .slidingWindow(limit: 600, window: .seconds(60)), key: .whole))
        #expect(config.services[0].maxInFlight == 100)
        #expect(config.routes[0].rateLimit == RateLimit(algorithm: .tokenBucket(rate: 10, burst: 20), key: .header("X-User"), maxKeys: 5000, body: "no"))
        #expect(config.routes[1].rateLimit == RateLimit(algorithm: .leakyBucket(rate: 5, maxDelay: .milliseconds(200)), key: .cookie("sid")))
        #expect(config.routes[1].maxInFlight == 2)
        #expect(config.routes[2].rateLimit == RateLimit(algorithm: .tokenBucket(rate: 3, burst: 3), key: .clientIP), "burst defaults to the rate")
    }

    @Test func rateLimitErrorsNameTheField() {
        do {
            _ = try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services: { s: { nodes: [{ name: a, host: h, port: 1 }], max_in_flight: 0 } }
                routes:
                  - { name: a, service: s, rate_limit: { algorithm: token_bucket, rate: -1, window: 1s } }
                  - { name: b, service: s, rate_limit: { algorithm: sliding_window, limit: 5, key: ip } }
                """)
            Issue.record("expected errors")
        } catch {
            let rendered = error.issues.map(\.description)
            #expect(rendered.contains("services.s.max_in_flight (line 2): 0 is out of range 1...10000000"))
            #expect(rendered.contains("routes[0].rate_limit.rate (line 4): expected requests per second, a number above 0"))
            #expect(rendered.contains("routes[0].rate_limit.window (line 4): not used by algorithm token_bucket"))
            #expect(rendered.contains("routes[1].rate_limit.window (line 5): is required"))
            #expect(rendered.contains("routes[1].rate_limit.key (line 5): 'ip' is not client_ip, route, service, header:NAME, cookie:NAME or query:NAME"))
        }
    }

    @Test func listenerTLSAndHTTPSRedirectsAreRead() throws {
        let config = try FulcrumConfig.parse("""
            listen:
              - address: 0.0.0.0
                port: 8443
                tls:
                  certificates:
                    - { cert: certs/a.pem, key: certs/a.key }
                    - { cert: certs/b.pem, key: certs/b.key }
                  default_certificate: certs/b.pem
                  min_version: 1.3
              - { port: 8080, redirect_to_https: 8443 }
            services: { s: { nodes: [{ name: a, host: h, port: 1 }] } }
            """)
        #expect(config.listeners[0].tls == ListenerTLS(
            certificates: [CertificateFiles(cert: "certs/a.pem", key: "certs/a.key"), CertificateFiles(cert: "certs/b.pem", key: "certs/b.key")],
            defaultCertificate: "certs/b.pem", minVersion: .v1_3))
        #expect(config.listeners[0].tls?.defaultIndex == 1)
        #expect(config.listeners[1] == Listener(address: "0.0.0.0", port: 8080, redirectToHTTPS: 8443))
        let defaults = try FulcrumConfig.parse("""
            listen: [{ port: 443, tls: { certificates: [{ cert: a.pem, key: a.key }] } }]
            services: { s: { nodes: [{ name: a, host: h, port: 1 }] } }
            """)
        #expect(defaults.listeners[0].tls == ListenerTLS(certificates: [CertificateFiles(cert: "a.pem", key: "a.key")], minVersion: .v1_2))
    }

    @Test func listenerTLSErrorsNameTheField() {
        func issues(_ text: String) -> [ConfigIssue] {
            do { _ = try FulcrumConfig.parse(text); return [] } catch { return error.issues }
        }
        let found = issues("""
            listen:
              - port: 8443
                tls:
                  certificates: [{ cert: certs/site.pem, key: certs/site.key }, { cert: certs/site.pem }]
                  default_certificate: certs/sit.pem
                  min_version: "1.1"
                  cipher: all
              - { port: 8444, tls: { certificates: [] } }
              - { port: 8445, tls: { certificates: [{ cert: a.pem, key: a.key }] }, redirect_to_https: 8443 }
              - { port: 8080, redirect_to_https: 70000 }
            services: { s: { nodes: [{ name: a, host: h, port: 1 }] } }
            """).map(\.description)
        #expect(found.contains("listen[0].tls.cipher (line 7): unknown field"), "\(found)")
        #expect(found.contains("listen[0].tls.certificates[1].key (line 4): is required"), "\(found)")
        #expect(found.contains("listen[0].tls.default_certificate (line 5): 'certs/sit.pem' is neither the cert of one of the certificates nor a stored certificate (did you mean 'certs/site.pem'?)"), "\(found)")
        #expect(found.contains("listen[0].tls.min_version (line 6): '1.1' is not one of 1.2, 1.3"), "\(found)")
        #expect(found.contains("listen[1].tls.certificates (line 8): at least one certificate is required (or one uploaded through the admin API, with a store)"), "\(found)")
        #expect(found.contains("listen[2].redirect_to_https (line 9): a listener with tls serves HTTPS itself; redirect from a plaintext listener"), "\(found)")
        #expect(found.contains("listen[3].redirect_to_https (line 10): 70000 is out of range 1...65535"), "\(found)")
    }

    @Test func http2SettingsAreReadAndMisplacedOnesNamed() throws {
        let config = try FulcrumConfig.parse("""
            listen:
              - { port: 8443, tls: { certificates: [{ cert: a.pem, key: a.key }], alpn: [http/1.1] } }
              - { port: 8080, h2c: true }
            http2: { max_concurrent_streams: 10, max_header_list_size: 8192, header_table_size: 0, max_resets: 20, reset_window: 5s }
            services: { s: { nodes: [{ name: a, host: h, port: 1 }] } }
            """)
        #expect(config.listeners[0].tls?.alpn == [.http1])
        #expect(config.listeners[1].h2c)
        var expected = HTTP2Limits()
        expected.maxConcurrentStreams = 10
        expected.maxHeaderListSize = 8192
        expected.headerTableSize = 0
        expected.maxResets = 20
        expected.resetWindow = .seconds(5)
        #expect(config.http2 == expected)
        do {
            _ = try FulcrumConfig.parse("""
                listen:
                  - { port: 8443, h2c: true, tls: { certificates: [{ cert: a.pem, key: a.key }], alpn: [h3, h2, h2] } }
                http2: { max_header_list_size: 100000 }
                services: { s: { nodes: [{ name: a, host: h, port: 1 }] } }
                """)
            Issue.record("expected errors")
        } catch {
            let found = error.issues.map(\.description)
            #expect(found.contains("listen[0].tls.alpn (line 2): 'h3' is not one of h2, http/1.1"), "\(found)")
            #expect(found.contains("listen[0].tls.alpn (line 2): 'h2' is listed twice"), "\(found)")
            #expect(found.contains("listen[0].h2c (line 2): h2c is HTTP/2 without TLS; a tls listener offers HTTP/2 through tls.alpn"), "\(found)")
            #expect(found.contains("http2.max_header_list_size (line 3): 100000 is out of range 1024...65536"), "\(found)")
        }
    }
}
