import FulcrumProxy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
import RealSockets

/// Access rules, trusted proxies and CC protection through a real proxy on loopback; clients
/// bound to 127.0.0.2, 127.0.0.3... stand in for other addresses.
@Suite(.realSockets) struct AccessIntegrationTests {
    /// One request on its own connection from `source`; the whole response as text.
    static func send(
        _ fixture: ProxyFixture, from source: String = "127.0.0.1", to host: String = "127.0.0.1", _ target: String,
        _ fields: [String] = []
    ) async throws -> String {
        let connection = try await RawConnection.connect(port: fixture.port, from: source, to: host)
        let head = (["GET \(target) HTTP/1.1", "Host: example.com", "Connection: close"] + fields).joined(separator: "\r\n")
        let response = try await connection.exchange(head + "\r\n\r\n")
        await connection.close()
        return response
    }

    /// One request on its own connection from 127.0.0.1; the whole response as bytes.
    static func sendBytes(_ fixture: ProxyFixture, method: String, _ target: String, _ fields: [String]) async throws -> [UInt8] {
        let connection = try await RawConnection.connect(port: fixture.port)
        let head = (["\(method) \(target) HTTP/1.1", "Host: example.com", "Connection: close"] + fields).joined(separator: "\r\n")
        let response = try await connection.exchangeBytes(head + "\r\n\r\n")
        await connection.close()
        return response
    }

    static func status(_ response: String) -> Int {
        Int(response.dropFirst(9).prefix(3)) ?? 0
    }

    static let rules = """
        trusted_proxies: [127.0.0.5]
        access_rules:
          - { name: office, allow: { client_ip: [127.0.0.2] } }
          - { name: scanners, deny: { header: { User-Agent: { regex: '(?i)sqlmap|nikto' } } }, status: 403 }
          - { name: no-dotfiles, deny: { path: { regex: '/\\.(git|env)' } } }
          - { name: bad-param, deny: { query: { id: { regex: "(?i)union\\\\s+select" } } }, body: "blocked\\n" }
          - { name: country, deny: { header: { X-Country: [XX, YY] } }, action: log }
        routes:
          - name: admin
            match: { path_prefix: /admin/ }
            service: s
            access_rules:
              - { name: admin-office, allow: { client_ip: [127.0.0.3] } }
              - { name: admin-others, deny: { client_ip: [0.0.0.0/0, "::/0"] }, status: 401 }
        default: { service: s }
        """

    static func start(_ backend: String) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: [backend]) { p in
            """
            services:
              s:
                nodes: [{ name: n, host: 127.0.0.1, port: \(p[backend]!) }]
                access_rules: [{ name: internal-only, deny: { path: { prefix: /internal/ } } }]
            \(rules)
            """
        }
    }

    @Test func denyRulesRefuseEveryCopyAndEncodingOfWhatTheyMatchAndNeverReachTheNode() async throws {
        let fixture = try await Self.start("waf")
        func status(_ target: String, _ fields: [String] = [], from source: String = "127.0.0.1") async throws -> Int {
            Self.status(try await Self.send(fixture, from: source, target, fields))
        }
        #expect(try await status("/", ["User-Agent: curl/8"]) == 200)
        #expect(try await status("/", ["User-Agent: sqlmap/1.7"]) == 403)
        // a second copy of the field is looked at too
        #expect(try await status("/", ["User-Agent: curl/8", "User-Agent: Nikto"]) == 403)
        #expect(try await status("/.git/config") == 403)
        #expect(try await status("/%2egit/config") == 403)  // decoded and normalised before the rules look
        #expect(try await status("/a/../.env") == 403)
        let blocked = try await Self.send(fixture, "/search?id=1%20UNION%20%20select%201")
        #expect(Self.status(blocked) == 403 && blocked.hasSuffix("\r\n\r\nblocked\n"))
        #expect(try await status("/search?id=1+union+select+2") == 403)
        #expect(try await status("/search?x=1&i%64=union%09select") == 403)  // encoded name, tab
        #expect(try await status("/search?id=42") == 200)
        // the service's and the route's rules
        #expect(try await status("/internal/metrics") == 403)
        #expect(try await status("/admin/users") == 401)
        #expect(try await status("/admin/users", from: "127.0.0.3") == 200)
        // an allow rule skips the deny rules of its scope only
        #expect(try await status("/", ["User-Agent: sqlmap"], from: "127.0.0.2") == 200)
        #expect(try await status("/admin/users", from: "127.0.0.2") == 401)
        // a logging rule lets the request through and counts it
        #expect(try await status("/", ["X-Country: XX"]) == 200)

        let state = await fixture.server.state()
        func hits(_ name: String) -> Int? { state.accessRules.first { $0.name == name }?.hits }
        #expect(hits("scanners") == 2 && hits("no-dotfiles") == 3 && hits("bad-param") == 3 && hits("country") == 1)
        #expect(hits("office") == 2 && hits("internal-only") == 1 && hits("admin-others") == 2 && hits("admin-office") == 1)
        #expect(state.accessRules.first { $0.name == "country" }?.action == "log")
        // only the 5 requests that were let through reached the node
        #expect(fixture.backends["waf"]!.requests == 5)
        await fixture.stop()
    }

    @Test func theClientBehindATrustedProxyIsTheRightMostUntrustedForwardedAddress() async throws {
        let fixture = try await Self.start("xff")
        func response(from source: String, _ forwarded: String?) async throws -> String {
            try await Self.send(fixture, from: source, "/admin/x", forwarded.map { ["X-Forwarded-For: \($0)"] } ?? [])
        }
        // from the trusted proxy: the forwarded client counts
        let viaProxy = try await response(from: "127.0.0.5", "127.0.0.3")
        #expect(Self.status(viaProxy) == 200)
        #expect(viaProxy.contains("x-real-ip: 127.0.0.3\n"))
        #expect(viaProxy.contains("x-forwarded-for: 127.0.0.3, 127.0.0.5\n"))
        // a spoofed left-most entry does not: the right-most untrusted one is the client
        #expect(Self.status(try await response(from: "127.0.0.5", "127.0.0.3, 127.0.0.9")) == 401)
        // two trusted hops are skipped
        #expect(Self.status(try await response(from: "127.0.0.5", "127.0.0.3, 127.0.0.5")) == 200)
        // garbage stops the walk at the last trusted hop
        #expect(Self.status(try await response(from: "127.0.0.5", "127.0.0.3, not-an-address")) == 401)
        // from anyone else the header is not believed
        let direct = try await response(from: "127.0.0.4", "127.0.0.3")
        #expect(Self.status(direct) == 401)
        await fixture.stop()
    }

    @Test func aFloodOfDenialsIsLoggedOnceASecondPerRuleWithItsCount() async throws {
        let lines = NIOLockedValueBox<[String]>([])
        let events = Logger(label: "test.events") { _ in CapturingLogHandler(lines: lines) }
        let fixture = try await ProxyFixture.start(backends: ["flood"], workers: 1, events: events) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["flood"]!) }] } }
            access_rules: [{ name: no-admin, deny: { path: { prefix: /admin } } }, { name: watch, deny: { methods: [GET] }, action: log }]
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        for _ in 0..<40 { #expect(try await client.request(.GET, "/admin/x").status == .forbidden) }
        await client.close()
        try await Task.sleep(for: .milliseconds(2300))  // the loop's sweep runs once a second
        let logged = lines.withLockedValue { $0 }.filter { $0.contains("rule=no-admin") || $0.contains("rule=watch") }
        let refused = logged.filter { $0.hasPrefix("access rule refused requests") && $0.contains("rule=no-admin") }
        #expect((1...3).contains(refused.count), "\(logged)")  // one line per second that saw denials, not 40
        let counts = refused.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("count=") }.flatMap { Int($0.dropFirst(6)) } }
        #expect(counts.reduce(0, +) == 40, "\(logged)")
        // a logging rule is logged as matched; the refused requests never reached it (deny rules stop at the first block)
        #expect(!logged.contains { $0.hasPrefix("access rule matched requests") && $0.contains("rule=watch") })
        await fixture.stop()
    }

    @Test func splitsAndRateLimitsSeeTheForwardedClientToo() async throws {
        let fixture = try await ProxyFixture.start(backends: ["stable", "canary"], workers: 1) { p in
            """
            trusted_proxies: [127.0.0.5]
            services:
              stable: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["stable"]!) }] }
              canary: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["canary"]!) }] }
            routes:
              - name: api
                match: { path_prefix: /api/ }
                rate_limit: { algorithm: sliding_window, limit: 2, window: 1m, key: client_ip }
                split:
                  targets: [{ service: stable, weight: 100 }, { name: beta, service: canary, weight: 0 }]
                  rules: [{ to: beta, client_ip: [10.9.0.0/16] }]
            """
        }
        func backend(from source: String, _ forwarded: String) async throws -> (Int, String?) {
            let response = try await Self.send(fixture, from: source, "/api/x", ["X-Forwarded-For: \(forwarded)"])
            let name = response.split(separator: "\r\n").first { $0.hasPrefix("X-Backend: ") }.map { String($0.dropFirst(11)) }
            return (Self.status(response), name)
        }
        // the split's client_ip rule sees the forwarded client only through a trusted proxy
        #expect(try await backend(from: "127.0.0.5", "10.9.1.1") == (200, "canary"))
        #expect(try await backend(from: "127.0.0.4", "10.9.1.1") == (200, "stable"))
        // the rate limit counts each forwarded client apart, and the proxy's other clients are not limited with them
        #expect(try await backend(from: "127.0.0.5", "10.9.1.1").0 == 200)
        #expect(try await backend(from: "127.0.0.5", "10.9.1.1").0 == 429)
        #expect(try await backend(from: "127.0.0.5", "10.8.1.1").0 == 200)
        await fixture.stop()
    }

    @Test func ipv6RulesMatchIPv6ClientsAndIPv4RulesDoNot() async throws {
        let fixture = try await ProxyFixture.start(backends: ["v6"], listener: "{ address: '::1', port: 0 }") { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["v6"]!) }] } }
            access_rules:
              - { name: v4-only, deny: { client_ip: [0.0.0.0/0], path: /v4 } }
              - { name: loopback6, deny: { client_ip: ["::1/128"], path: { prefix: /six } } }
              - { name: doc-range, deny: { client_ip: ["2001:db8::/32"] } }
            default: { service: s }
            """
        }
        #expect(Self.status(try await Self.send(fixture, from: "::1", to: "::1", "/six/a")) == 403)
        #expect(Self.status(try await Self.send(fixture, from: "::1", to: "::1", "/v4")) == 200)
        #expect(Self.status(try await Self.send(fixture, from: "::1", to: "::1", "/other")) == 200)
        await fixture.stop()
    }

    @Test func aCCRuleBansAKeyOnEveryLoopUntilTheBanEndsOrIsLifted() async throws {
        let fixture = try await ProxyFixture.start(backends: ["cc"], workers: 2) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["cc"]!) }] } }
            cc:
              - { name: login, key: client_ip, match: { path: /login, methods: [GET] }, limit: 3, window: 10s, ban: 1s }
            default: { service: s }
            """
        }
        func status(from source: String, _ target: String = "/login") async throws -> (Int, String) {
            let response = try await Self.send(fixture, from: source, target)
            return (Self.status(response), response)
        }
        // counting is per event loop: the key goes over on one loop after 3 of its requests and
        // at most 3 on the other (2 × 3 + 1 requests at most)
        var allowed = 0
        var refusal: String?
        for _ in 0..<7 where refusal == nil {
            let (code, response) = try await status(from: "127.0.0.2")
            if code == 200 { allowed += 1 } else { refusal = response }
        }
        #expect((3...6).contains(allowed))
        let response = try #require(refusal)
        #expect(Self.status(response) == 429)
        #expect(response.contains("Retry-After: 1\r\n"))
        // every new connection (each may land on either loop) is refused while the ban lasts
        for _ in 0..<4 { #expect(try await status(from: "127.0.0.2").0 == 429) }
        // other keys and other paths are not affected
        #expect(try await status(from: "127.0.0.3").0 == 200)
        #expect(try await status(from: "127.0.0.2", "/other").0 == 200)
        let state = await fixture.server.state()
        #expect(state.bans.map { "\($0.rule) \($0.key)" } == ["login 127.0.0.2"])
        #expect(state.cc.first?.bans == 1 && state.cc.first?.refused == 5)  // the request that went over, and 4
        // the ban ends by itself
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try await status(from: "127.0.0.2").0 == 200)
        #expect(await fixture.server.state().bans.isEmpty)

        // banned again, then lifted
        for _ in 0..<7 { _ = try await status(from: "127.0.0.3") }
        #expect(try await status(from: "127.0.0.3").0 == 429)
        #expect(fixture.server.liftBan(rule: "login", key: "127.0.0.3"))
        try await Task.sleep(for: .milliseconds(50))  // the other loop takes the lift from its queue
        #expect(try await status(from: "127.0.0.3").0 == 200)
        #expect(!fixture.server.liftBan(rule: "login", key: "127.0.0.3"))
        await fixture.stop()
    }
}
