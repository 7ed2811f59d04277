import Testing
@testable import FulcrumCore

/// Addresses, the address trie, the forwarded-client rule and access rule evaluation.
@Suite struct AccessRulesTests {
    @Test func addressesParseWithoutMixingFamilies() throws {
        #expect(IPAddress(parsing: "10.1.2.3") == IPAddress(ipv4: 0x0A01_0203))
        #expect(IPAddress(parsing: "10.1.2.3")?.isIPv4 == true)
        #expect(IPAddress(parsing: "::1") == IPAddress(high: 0, low: 1))
        #expect(IPAddress(parsing: "2001:db8::8:1") == IPAddress(high: 0x2001_0db8_0000_0000, low: 0x0000_0000_0008_0001))
        #expect(IPAddress(parsing: "fe80::1%eth0") == IPAddress(parsing: "fe80::1"))
        #expect(IPAddress(parsing: "[2001:db8::1]") == IPAddress(parsing: "2001:db8::1"))
        #expect(IPAddress(parsing: "1:2:3:4:5:6:7:8")?.description == "1:2:3:4:5:6:7:8")
        #expect(IPAddress(parsing: "fe80::")?.high == 0xfe80_0000_0000_0000)
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04444", "1::2::3", ":1", "1:", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "::ffff:1.2.3.4", "1.2.3.4 "] {
            #expect(IPAddress(parsing: bad[...]) == nil, "\(bad)")
        }
    }

    @Test func rangesIgnoreTheBitsBeyondTheirPrefix() throws {
        let range = try #require(AddressRange(parsing: "10.1.2.3/8"))
        #expect(range.contains(IPAddress(parsing: "10.200.0.1")!) && !range.contains(IPAddress(parsing: "11.0.0.1")!))
        let v4 = try #require(AddressRange(parsing: "192.168.4.0/22"))
        #expect(v4.contains("192.168.7.255") && !v4.contains("192.168.8.0") && !v4.contains("::1"))
        #expect(AddressRange(parsing: "10.0.0.0/33") == nil && AddressRange(parsing: "::/129") == nil && AddressRange(parsing: "[::1]") == nil)
    }

    @Test func theTrieFindsEveryRangeHoldingAnAddressWidestFirst() throws {
        var trie = AddressTrie()
        let ranges = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "::/0", "192.168.0.0/16"]
        for (index, text) in ranges.enumerated() { trie.insert(AddressRange(parsing: text)!, value: index) }
        func matches(_ text: String) -> [Int] {
            var found: [Int] = []
            trie.forEachMatch(IPAddress(parsing: text[...])!) { found.append($0) }
            return found
        }
        #expect(matches("10.1.2.3") == [4, 0, 1, 2])  // ::/0 holds every IPv4 address too
        #expect(matches("10.1.9.9") == [4, 0, 1])
        #expect(matches("11.0.0.1") == [4])
        #expect(matches("2001:db8:1::5") == [4, 3])
        #expect(matches("2001:db9::5") == [4])
        var onlyV4 = AddressTrie()
        onlyV4.insert(AddressRange(parsing: "0.0.0.0/0")!, value: 0)
        #expect(onlyV4.contains(IPAddress(parsing: "8.8.8.8")!) && !onlyV4.contains(IPAddress(parsing: "::1")!))
    }

    @Test func theForwardedClientIsTheRightMostUntrustedEntry() {
        var trusted = AddressTrie()
        trusted.insert(AddressRange(parsing: "10.0.0.0/8")!, value: 0)
        func client(_ values: [Substring]) -> String? { ForwardedFor.client(values, trusted: trusted).map { String($0.text) } }
        #expect(client(["1.1.1.1, 2.2.2.2, 10.0.0.1"]) == "2.2.2.2")
        #expect(client(["1.1.1.1", "10.0.0.2 , 10.0.0.1"]) == "1.1.1.1")  // fields in order, spaces trimmed
        #expect(client(["10.0.0.3, 10.0.0.1"]) == "10.0.0.3")  // all trusted: the left-most
        #expect(client(["1.1.1.1, junk, 10.0.0.1"]) == "10.0.0.1")  // garbage: the last trusted entry read
        #expect(client(["junk"]) == nil)
        #expect(client([]) == nil)
    }

    private func rules(_ yaml: String) throws -> [AccessRule] {
        try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9001 }] } }
            access_rules:
            \(yaml)
            """).accessRules
    }

    private func verdict(_ rules: AccessRules, _ request: DescribedRequest, hits: inout [Int]) -> String {
        var scratch: [Int] = []
        switch rules.evaluate(request, client: IPAddress(parsing: request.clientIP)!, hits: &hits, candidates: &scratch) {
        case .pass: return "pass"
        case .deny(let index): return rules.rules[index].name
        }
    }

    @Test func allowRulesComeFirstThenTheFirstBlockingDenyRule() throws {
        let compiled = AccessRules(try rules("""
              - { name: log-all-posts, deny: { methods: [POST] }, action: log }
              - { name: admin, deny: { path: { prefix: /admin }, host: [Example.COM] } }
              - { name: dotfiles, deny: { path: { regex: '/\\.(git|env)' } } }
              - { name: office, allow: { client_ip: [10.0.0.0/8] } }
              - { name: exact, deny: { path: [/a, /b], cookie: { role: { prefix: guest } } } }
              - { name: bad-query, deny: { query: { q: { regex: '(?i)<script' } } } }
            """))
        var hits = Array(repeating: 0, count: compiled.rules.count)
        #expect(verdict(compiled, TestRequest("GET", "/admin/x", host: "example.com"), hits: &hits) == "admin")
        #expect(verdict(compiled, TestRequest("GET", "/admin/x", host: "other.com"), hits: &hits) == "pass")
        #expect(verdict(compiled, TestRequest("GET", "/admin/x", host: "example.com", clientIP: "10.9.9.9"), hits: &hits) == "pass")
        #expect(verdict(compiled, TestRequest("POST", "/x/.env"), hits: &hits) == "dotfiles")
        #expect(verdict(compiled, TestRequest("GET", "/b", headers: [("Cookie", "a=1"), ("Cookie", "role=guest-7")]), hits: &hits) == "exact")
        #expect(verdict(compiled, TestRequest("GET", "/b", headers: [("Cookie", "role=admin")]), hits: &hits) == "pass")
        #expect(verdict(compiled, TestRequest("GET", "/c", headers: [("Cookie", "role=guest")]), hits: &hits) == "pass")
        #expect(verdict(compiled, TestRequest("GET", "/s?q=%3CSCRIPT%3Ealert(1)"), hits: &hits) == "bad-query")
        #expect(verdict(compiled, TestRequest("POST", "/fine"), hits: &hits) == "pass")
        #expect(hits == [2, 1, 1, 1, 1, 1])
    }

    @Test func aThousandRulesAreFoundThroughTheirIndexes() throws {
        var yaml = ""
        for index in 0..<1000 { yaml += "  - { name: ip\(index), deny: { client_ip: [10.\(index / 250).\(index % 250).0/24] } }\n" }
        for index in 0..<1000 { yaml += "  - { name: path\(index), deny: { path: { prefix: /blocked/\(index)/ } } }\n" }
        let compiled = AccessRules(try rules(yaml))
        var hits = Array(repeating: 0, count: compiled.rules.count)
        #expect(verdict(compiled, TestRequest("GET", "/blocked/999/x"), hits: &hits) == "path999")
        #expect(verdict(compiled, TestRequest("GET", "/ok", clientIP: "10.3.249.7"), hits: &hits) == "ip999")
        #expect(verdict(compiled, TestRequest("GET", "/ok", clientIP: "10.4.0.1"), hits: &hits) == "pass")
        #expect(hits.reduce(0, +) == 2)
    }

    @Test func checkNamesTheFieldOfEveryRuleMistake() {
        func issues(_ text: String) -> [String] {
            do {
                _ = try FulcrumConfig.parse("listen: [{ port: 8080 }]\nservices: { s: { nodes: [{ name: n, host: h, port: 1 }] } }\n" + text)
                return []
            } catch {
                return error.issues.map { "\($0.path): \($0.message)" }
            }
        }
        let found = issues("""
            access_rules:
              - { name: a, deny: { client_ip: [10.0.0.0/33] } }
              - { name: b, allow: { path: /x }, status: 403 }
              - { name: c, deny: {} }
              - { name: d, deny: { header: { X-A: { regex: '(' } } } }
              - { name: a, deny: { methods: [get] }, action: drop }
              - { name: e, allow: { path: /x }, deny: { path: /y } }
            cc:
              - { name: f, key: path, limit: 0, window: 1s, ban: 1s }
            trusted_proxies: [10.0.0.0/8, nope]
            """)
        let expected = [
            "access_rules[0].deny.client_ip: '10.0.0.0/33' is not an IP address or CIDR range",
            "access_rules[1].status: an allow rule lets requests through; 'status' is for deny rules",
            "access_rules[2].deny: no condition: a rule for every request names them all (client_ip: [0.0.0.0/0, \"::/0\"])",
            "access_rules[4].name: rule name 'a' is also used at access_rules[0]",
            "access_rules[4].deny.methods: 'get' is not an upper-case method name",
            "access_rules[5]: a rule has either 'allow' or 'deny' with its conditions",
            "cc[0].key: 'path' is not client_ip, header:NAME, cookie:NAME or query:NAME",
            "trusted_proxies[1]: 'nope' is not an IP address or CIDR range",
        ]
        for line in expected { #expect(found.contains(line), "missing: \(line)\nfound: \(found.joined(separator: "\n"))") }
        #expect(found.contains { $0.hasPrefix("access_rules[3].deny.header.X-A.regex: not a valid regular expression") })
        #expect(found.contains { $0.hasPrefix("access_rules[4].action:") })
        #expect(found.contains { $0.hasPrefix("cc[0].limit:") })
    }
}

/// The literal a regular expression's matches must contain, and that using it changes no answer.
@Suite struct RequiredLiteralTests {
    @Test func theLiteralIsTakenFromTheTopLevelOnly() {
        func literal(_ source: String) -> String? { RequiredLiteral(source).map { String(decoding: $0.bytes, as: UTF8.self) } }
        #expect(literal("/\\.(git|env)") == "/.")
        #expect(literal("(?i)union\\s+select") == "select")
        #expect(literal("(?i)UNION\\s+sel") == "union")
        #expect(literal("^/wp-(admin|login)") == "/wp-")
        #expect(literal("abc?d") == "ab")
        #expect(literal("ab+cd") == "ab")
        #expect(literal("a|bcd") == nil)
        #expect(literal("(?=x)abc") == nil)
        #expect(literal("\\Qa.b\\E") == nil)
        #expect(literal("[abc]xyz{2}") == "xy")
        #expect(literal("\\d+") == nil)
        #expect(literal("é+abc") == nil)
        #expect(literal("\\x41BC") == nil)
        #expect(literal("ab\\1cd") == nil)
    }

    @Test func usingTheLiteralAnswersAsTheEngineDoes() throws {
        let patterns = [
            "/\\.(git|env)", "(?i)union\\s+select", "^/wp-(admin|login)", "abc?d", "ab+cd", "[abc]xyz{2}", "(?i)sqlmap|nikto", "x\\.y*z",
            "(?:ab)+cd", "\\[ab\\]", "a{0,2}bc", "(a)(b)cd\\1", "\\x61bc", "(?i)\\x61BC",
        ]
        var random = FastRandom(seed: 7)
        let alphabet = Array("abcdxyzUNIONSELECTsqlmap/.-gitenvwp_ \\[]K".utf8)
        for source in patterns {
            let engine = try Regex(source)
            let pattern = try PathPattern(source)
            for _ in 0..<400 {
                let length = Int(random.next() % 14)
                var bytes = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
                if random.next() % 3 == 0 { bytes += Array(source.utf8.filter { $0 != UInt8(ascii: "\\") }.prefix(8)) }
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(pattern.matches(text[...]) == ((try? engine.firstMatch(in: text)) != nil), "\(source) on \(text)")
            }
            // outside ASCII the engine decides: the Kelvin sign is a K, canonically and without case
            #expect(pattern.matches("\u{212A}"[...]) == ((try? engine.firstMatch(in: "\u{212A}")) != nil))
        }
        #expect(try PathPattern("(?i)k").matches("x\u{212A}x"[...]))
    }
}

/// Expressions whose backtracking can take exponential time on a crafted text are refused.
@Suite struct NestedRepetitionTests {
    @Test func aRepeatedGroupThatRepeatsInsideIsRefusedAndOthersAreNot() {
        for risky in ["(a+)+", "(\\w*)*b", "^(x{2,})+$", "((ab)*c)+", "(a|b+)*", "([a-z]+)*@"] {
            #expect(PathPattern.nestedRepetition(risky) != nil, "\(risky)")
        }
        for safe in ["^/v[0-9]+/", "(?i)union\\s+select", "/\\.(git|env)", "(ab)+c", "(a+)b+", "(x{1})+", "[(+)]+", "\\(a+\\)+", "(a)?b*"] {
            #expect(PathPattern.nestedRepetition(safe) == nil, "\(safe)")
        }
        do {
            _ = try FulcrumConfig.parse("listen: [{ port: 1 }]\nservices: { s: { nodes: [{ name: n, host: h, port: 1 }] } }\naccess_rules: [{ name: r, deny: { path: { regex: '(a+)+$' } } }]")
            Issue.record("a nested repetition was accepted")
        } catch {
            #expect(error.issues.first?.path == "access_rules[0].deny.path.regex")
            #expect(error.issues.first?.message.contains("exponential time") == true)
        }
    }
}
