import Testing
@testable import FulcrumCore

@Suite struct TrafficSplitTests {
    static func config(weights: (Int, Int) = (95, 5), extra: String = "") throws -> FulcrumConfig {
        try FulcrumConfig.parse("""
            listen: [{ port: 80 }]
            services:
              v1: { nodes: [{ name: a, host: 127.0.0.1, port: 9001 }] }
              v2: { nodes: [{ name: b, host: 127.0.0.1, port: 9002, tags: [green] }, { name: c, host: 127.0.0.1, port: 9003 }] }
            routes:
              - name: api
                match: { path_prefix: /api/ }
                split:
                  targets:
                    - { service: v1, weight: \(weights.0) }
                    - { name: canary, service: v2, tags: [green], weight: \(weights.1) }
                  rules:
                    - { to: canary, header: { X-Canary: "1" } }
                    - { to: v1, cookie: { stable: "yes" } }
                    - { to: canary, query: { canary: "1" } }
                    - { to: canary, client_ip: [10.1.0.0/16, "2001:db8::/32"] }
            \(extra)
            """)
    }

    static func decider(_ config: FulcrumConfig) -> SplitDecider { SplitDecider(split: config.routes[0].split!) }

    @Test func aSplitIsParsedWithDefaultsAndTheFirstTargetAsTheRoutesService() throws {
        let config = try Self.config(extra: "      hash_key: header:X-User\n      sticky_cookie: { name: side }")
        let split = try #require(config.routes[0].split)
        #expect(split.targets.map(\.name) == ["v1", "canary"])
        #expect(split.targets[1].tags == ["green"])
        #expect(config.routes[0].target?.service == "v1")
        #expect(split.rules.count == 4)
        #expect(split.hashKey == .header("X-User"))
        #expect(split.stickyCookie == .init(name: "side", maxAge: .seconds(86_400)))
    }

    @Test(arguments: [
        ("targets: [{ service: v1, weight: 100 }]", "a split needs at least two targets"),
        ("targets: [{ service: v1, weight: 90 }, { service: v2, weight: 5 }]", "the weights add up to 95, not 100"),
        ("targets: [{ service: v1, weight: 50 }, { service: v1, weight: 50 }]", "two targets are called 'v1'"),
        ("targets: [{ service: v1, weight: 50 }, { service: v3, weight: 50 }]", "no service named 'v3'"),
        ("targets: [{ service: v1, weight: 50 }, { service: v2, tags: [blue], weight: 50 }]", "no node of service 'v2' has the tags blue"),
        ("targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }]\n      rules: [{ to: v3, header: { X: '1' } }]", "no target named 'v3'"),
        ("targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }]\n      rules: [{ to: v2, header: { X: '1' }, cookie: { y: '2' } }]", "a rule has exactly one of"),
        ("targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }]\n      rules: [{ to: v2, client_ip: [10.0.0.0/33] }]", "'10.0.0.0/33' is not an IP address or CIDR range"),
    ])
    func invalidSplitsAreRefusedWithTheirPath(split: String, expected: String) {
        let text = """
            listen: [{ port: 80 }]
            services:
              v1: { nodes: [{ name: a, host: 127.0.0.1, port: 9001 }] }
              v2: { nodes: [{ name: b, host: 127.0.0.1, port: 9002 }] }
            routes:
              - name: api
                split:
                  \(split)
            """
        #expect {
            _ = try FulcrumConfig.parse(text)
        } throws: { error in
            guard let error = error as? ConfigError, error.issues.count == 1 else { return false }
            return error.issues[0].path.hasPrefix("routes[0].split") && error.issues[0].message.contains(expected)
        }
    }

    @Test func aRouteWithASplitNamesNoServiceOfItsOwn() {
        #expect(throws: ConfigError.self) {
            try FulcrumConfig.parse("""
                listen: [{ port: 80 }]
                services: { v1: { nodes: [{ name: a, host: 127.0.0.1, port: 9001 }] }, v2: { nodes: [{ name: b, host: 127.0.0.1, port: 9002 }] } }
                routes: [{ name: r, service: v1, split: { targets: [{ service: v1, weight: 50 }, { service: v2, weight: 50 }] } }]
                """)
        }
    }

    @Test func weightsHoldWithinTolerance() throws {
        let decider = Self.decider(try Self.config())
        var random = FastRandom(seed: 11)
        var canary = 0
        for _ in 0..<10_000 where decider.decide(try DescribedRequest(target: "/api/x"), random: &random).target == 1 { canary += 1 }
        // 5 % of 10,000 is 500; the standard deviation is about 22, so ±90 is four of them
        #expect(abs(canary - 500) < 90, "canary got \(canary)")
    }

    @Test func rulesComeFirstInOrder() throws {
        let decider = Self.decider(try Self.config(weights: (100, 0)))
        var random = FastRandom(seed: 1)
        func decide(_ request: DescribedRequest) -> SplitDecider.Decision { decider.decide(request, random: &random) }
        #expect(decide(try DescribedRequest(target: "/api/x", headers: [("X-Canary", "1")])) == .init(target: 1, reason: .rule(0), setsCookie: false))
        #expect(decide(try DescribedRequest(target: "/api/x", headers: [("X-Canary", "1"), ("Cookie", "stable=yes")])).reason == .rule(0))
        #expect(decide(try DescribedRequest(target: "/api/x", headers: [("Cookie", "stable=yes")])).target == 0)
        #expect(decide(try DescribedRequest(target: "/api/x?canary=1")).target == 1)
        #expect(decide(try DescribedRequest(target: "/api/x", clientIP: "10.1.200.3")).target == 1)
        #expect(decide(try DescribedRequest(target: "/api/x", clientIP: "10.2.0.1")).target == 0)
        #expect(decide(try DescribedRequest(target: "/api/x", clientIP: "2001:db8::7")).target == 1)
        #expect(decide(try DescribedRequest(target: "/api/x")) == .init(target: 0, reason: .weight, setsCookie: false))
    }

    @Test func hashingKeepsAUserOnItsSideAndOnTheCanaryAsItGrows() throws {
        let extra = "      hash_key: header:X-User"
        var random = FastRandom(seed: 2)
        let users = (0..<2000).map { "user-\($0)" }
        func sides(_ canaryWeight: Int) throws -> [Int] {
            let decider = Self.decider(try Self.config(weights: (100 - canaryWeight, canaryWeight), extra: extra))
            return try users.map { decider.decide(try DescribedRequest(target: "/api/", headers: [("X-User", $0)]), random: &random).target }
        }
        let five = try sides(5)
        #expect(try sides(5) == five, "the same user gets the same side every time")
        let canaryAtFive = five.filter { $0 == 1 }.count
        #expect(abs(canaryAtFive - 100) < 40, "\(canaryAtFive) of 2000 at 5 %")
        let twentyFive = try sides(25)
        #expect(zip(five, twentyFive).allSatisfy { old, new in old == 0 || new == 1 }, "nobody leaves the canary as it grows")
        #expect(abs(twentyFive.filter { $0 == 1 }.count - 500) < 80)
    }

    @Test func theStickyCookieKeepsASideUnlessItsWeightIsZero() throws {
        let extra = "      sticky_cookie: { name: side, max_age: 1h }"
        var random = FastRandom(seed: 3)
        let decider = Self.decider(try Self.config(weights: (50, 50), extra: extra))
        let first = decider.decide(try DescribedRequest(target: "/api/"), random: &random)
        #expect(first.setsCookie)
        for _ in 0..<50 {
            #expect(decider.decide(try DescribedRequest(target: "/api/", headers: [("Cookie", "side=canary")]), random: &random) == .init(target: 1, reason: .cookie, setsCookie: false))
        }
        let rolledBack = Self.decider(try Self.config(weights: (100, 0), extra: extra))
        #expect(rolledBack.decide(try DescribedRequest(target: "/api/", headers: [("Cookie", "side=canary")]), random: &random).target == 0)
    }

    @Test func addressRangesMatchIPv4AndIPv6() throws {
        let v4 = try #require(AddressRange(parsing: "192.168.4.0/22"))
        #expect(v4.contains("192.168.7.255") && !v4.contains("192.168.8.0") && !v4.contains("::1"))
        let one = try #require(AddressRange(parsing: "127.0.0.1"))
        #expect(one.contains("127.0.0.1") && !one.contains("127.0.0.2"))
        let v6 = try #require(AddressRange(parsing: "fe80::/10"))
        #expect(v6.contains("fe80::1%eth0") && v6.contains("febf:ffff::") && !v6.contains("fec0::"))
        #expect(AddressRange(parsing: "::ffff:10.0.0.1") == nil, "mixed notation is not accepted")
        for bad in ["300.1.1.1", "1.2.3", "1:2:3:4:5:6:7:8:9", "1::2::3", "10.0.0.0/-1", "x"] {
            #expect(AddressRange(parsing: bad) == nil, "\(bad)")
        }
        #expect(AddressRange(parsing: "0.0.0.0/0")?.contains("8.8.8.8") == true)
    }
}

@Suite struct SplitExplanationTests {
    @Test func theRouteReportShowsTheSplitDecision() throws {
        let config = try TrafficSplitTests.config(weights: (100, 0))
        let ruled = RouteReport(config: config, request: try DescribedRequest(target: "/api/x", headers: [("X-Canary", "1")]))
        #expect(ruled.split == "canary (rule 1; nodes tagged green)")
        #expect(ruled.service == "v2" && ruled.node == nil)
        #expect(ruled.text.contains("split: canary (rule 1; nodes tagged green)"))
        #expect(ruled.nodeReason?.hasSuffix("a fresh balancer picks b (127.0.0.1:9002)") == true, "only the tagged node: \(ruled.nodeReason ?? "")")
        let weighted = RouteReport(config: config, request: try DescribedRequest(target: "/api/x"))
        #expect(weighted.split == "v1 (weighted random choice)" && weighted.service == "v1")
        #expect(weighted.document["split"] == .string("v1 (weighted random choice)"))
    }
}
