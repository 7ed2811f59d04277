import Testing
@testable import FulcrumCore

@Suite struct ConfigDocumentTests {
    @Test func yamlScalarsTakeTheirMeaningFromSpellingAndQuotes() throws {
        let document = try ConfigDocument.parse("""
            a: 3
            b: "3"
            c: 0.0.0.0
            d: true
            e: ~
            f: 10s
            g: [x, -1.5e3]
            """)
        #expect(document == .mapping([
            .init("a", .number("3")), .init("b", .string("3")), .init("c", .string("0.0.0.0")), .init("d", .bool(true)),
            .init("e", .null), .init("f", .string("10s")), .init("g", .list([.string("x"), .number("-1.5e3")])),
        ]))
    }

    @Test func sampleConfigSurvivesYAMLAndJSONRoundTrips() throws {
        let document = try ConfigDocument.parse(ConfigParsingTests.sample)
        #expect(try ConfigDocument.parse(document.yamlText()) == document)
        #expect(try JSONDocumentReader.parse(document.jsonText()) == document)
        #expect(try JSONDocumentReader.parse(document.jsonText(pretty: true)) == document)
        #expect(try FulcrumConfig.parse(document: document) == FulcrumConfig.parse(ConfigParsingTests.sample))
    }

    @Test func randomDocumentsSurviveRoundTrips() throws {
        var random = FastRandom(seed: 42)
        for _ in 0..<300 {
            let document = Self.randomDocument(&random, depth: 0)
            let yaml = document.yamlText()
            #expect(try ConfigDocument.parse(yaml) == document, "YAML:\n\(yaml)")
            #expect(try JSONDocumentReader.parse(document.jsonText()) == document)
            #expect(try JSONDocumentReader.parse(document.jsonText(pretty: true)) == document)
        }
    }

    static let awkwardStrings = [
        "", " ", "plain", "two words", "3", "0.5", "-1", "true", "no", "on", "Y", "null", "~", "0.0.0.0", "10s", "a: b",
        "# not a comment", "- dash", "[x]", "{y}", "quote\"d", "back\\slash", "line\nbreak", "tab\there", "é-ünïcode",
        "🙂", "&anchor", "*alias", "!tag", "%directive", "@at", "`tick`", "'single'", "trailing ", " leading",
        "/api/v1/", "X-Tenant", ".inf", "key:", "?", "|", ">", "\u{7}bell", "\u{2028}",
    ]

    static func randomDocument(_ random: inout FastRandom, depth: Int) -> ConfigDocument {
        let kind = random.below(depth >= 3 ? 4 : 6)
        switch kind {
        case 0: return .null
        case 1: return .bool(random.below(2) == 0)
        case 2: return .number(["0", "7", "-3", "2.5", "1e3", "-0.25E-2"][random.below(6)])
        case 3: return .string(awkwardStrings[random.below(awkwardStrings.count)])
        case 4: return .list((0..<random.below(4)).map { _ in randomDocument(&random, depth: depth + 1) })
        default:
            var members: [ConfigDocument.Member] = []
            for _ in 0..<random.below(4) {
                let key = awkwardStrings[random.below(awkwardStrings.count)]
                if !members.contains(where: { $0.key == key }) {
                    members.append(.init(key, randomDocument(&random, depth: depth + 1)))
                }
            }
            return .mapping(members)
        }
    }

    @Test func yamlTextIsReadable() {
        let document = ConfigDocument.mapping([
            .init("listen", .list([.mapping([.init("address", .string("127.0.0.1")), .init("port", .int(80))])])),
            .init("services", .mapping([.init("web", .mapping([.init("nodes", .list([]))]))])),
        ])
        #expect(document.yamlText() == """
            listen:
              - address: "127.0.0.1"
                port: 80
            services:
              web:
                nodes: []

            """)
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "line 1, column 9: expected a string key"),
        ("{\"a\": 1, \"a\": 2}", "duplicate key 'a'"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\": 01}", "invalid number '01'"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\ud800\"", "unpaired surrogate"),
        ("// comment\n{}", "line 1, column 1: unexpected character '/'"),
        ("{}\n  x", "line 2, column 3: unexpected text after the value"),
        ("\"a\u{1}\"", "control character"),
        ("", "found the end of the text"),
        ("nul", "expected 'null'"),
    ])
    func strictJSONRejectsWithAPosition(text: String, expected: String) {
        #expect {
            _ = try JSONDocumentReader.parse(text)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func jsonNestingIsBounded() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONDocumentReader.SyntaxError.self) { try JSONDocumentReader.parse(deep) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONDocumentReader.parse(fine) != .null)
    }

    @Test func jsonEscapesDecode() throws {
        #expect(try JSONDocumentReader.parse(#""a\"\\\/\n\u00e9\ud83d\ude42""#) == .string("a\"\\/\né🙂"))
    }

    @Test func documentValidationReportsPathsWithoutLines() throws {
        var document = try ConfigDocument.parse(ConfigParsingTests.sample)
        document["services"]?["users"]?["strategy"] = .string("fastest")
        document["workers"] = .string("two")
        #expect {
            _ = try FulcrumConfig.parse(document: document)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.issues.map(\.path) == ["workers", "services.users.strategy"] && error.issues.allSatisfy { $0.line == nil }
        }
    }

    @Test func subscriptSetsAppendsAndRemoves() {
        var document = ConfigDocument.mapping([.init("a", .int(1)), .init("b", .int(2))])
        document["a"] = .int(5)
        document["c"] = .bool(false)
        document["b"] = nil
        #expect(document == .mapping([.init("a", .int(5)), .init("c", .bool(false))]))
    }

    @Test func changesListEveryDifferenceByPath() throws {
        let before = try ConfigDocument.parse(ConfigParsingTests.sample)
        var after = before
        after["services"]?["users"]?["strategy"] = .string("random")
        after["default"] = nil
        after["access_log"] = .bool(false)
        var routes = after["routes"]!.items
        routes.removeLast()
        after["routes"] = .list(routes)
        let changes = before.changes(to: after)
        #expect(changes.map(\.path) == ["services.users.strategy", "routes[1]", "default", "access_log"])
        #expect(changes[0].description == #"~ services.users.strategy: "round_robin" -> "random""#)
        #expect(changes[3].description == "+ access_log: false")
        #expect(before.changes(to: before).isEmpty)
    }
}

@Suite struct ConfigDocumentEditingTests {
    @Test func mergePatchFollowsRFC7396() throws {
        // The examples of RFC 7396, section 3.
        let target = try JSONDocumentReader.parse(#"{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}"#)
        let patch = try JSONDocumentReader.parse(#"{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}"#)
        let expected = try JSONDocumentReader.parse(#"{"title":"Hello!","author":{"givenName":"John"},"tags":["example"],"content":"This will be unchanged","phoneNumber":"+01-123-456-7890"}"#)
        #expect(target.merged(with: patch) == expected)
        #expect(ConfigDocument.string("a").merged(with: try JSONDocumentReader.parse(#"{"b":{"c":null}}"#)) == .mapping([.init("b", .emptyMapping)]))
        #expect(ConfigDocument.emptyMapping.merged(with: .list([.int(1)])) == .list([.int(1)]))
    }

    @Test func valuesAreReadAndWrittenByPath() {
        var document = ConfigDocument.emptyMapping
        document.setValue(.int(3), at: ["services", "web", "max_in_flight"])
        #expect(document.value(at: ["services", "web", "max_in_flight"]) == .int(3))
        document.setValue(nil, at: ["services", "web", "max_in_flight"])
        #expect(document == .mapping([.init("services", .mapping([.init("web", .emptyMapping)]))]))
        #expect(document.value(at: ["services", "api"]) == nil)
    }
}
