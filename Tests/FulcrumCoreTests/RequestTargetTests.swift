import Testing
@testable import FulcrumCore

/// Routing must act on the path the node will act on: without normalisation, `/public/../admin`
/// and its encoded forms were routed by the `/public/` route and served `/admin`.
@Suite struct RequestTargetTests {
    static func path(_ target: String, _ encodedSlashes: RequestTarget.EncodedSlashes = .refuse) throws -> String {
        String(try RequestTarget(parsing: target[...], encodedSlashes: encodedSlashes).path)
    }

    @Test(arguments: [
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"),
        ("/a/./b/../../c", "/c"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/..", "/"),
        ("//admin", "/admin"),
        ("/a//b///c/", "/a/b/c/"),
        ("/%7Euser/%41%62c", "/~user/Abc"),
        ("/a%20b/%3a%c3%a9", "/a%20b/%3A%C3%A9"),
        ("/...", "/..."),
        ("/.hidden/..x", "/.hidden/..x"),
        ("/a;b/c", "/a;b/c"),
    ])
    func pathsAreNormalisedAsTheNodeWillReadThem(_ target: String, _ expected: String) throws {
        #expect(try Self.path(target) == expected)
    }

    @Test(arguments: [
        "/public/..%2fadmin", "/a%2Fb", "/a%5cb", "/a\\b", "/a%00", "/a%", "/a%4", "/a%zz",
        "/public/..;/admin", "/public/.;x/admin", "/public/%2e%2e;x/admin",
    ])
    func pathsNodesReadDifferentlyAreRefused(_ target: String) {
        #expect(throws: RequestTargetError.self) { try Self.path(target) }
    }

    @Test func encodedSlashesCanBeKeptForAPIsThatNeedThem() throws {
        #expect(try Self.path("/files/a%2fb/../c", .keep) == "/files/c")
        #expect(try Self.path("/files/a%2fb", .keep) == "/files/a%2Fb")
        #expect(try Self.path("/files/..%2f..%2fetc", .keep) == "/files/..%2F..%2Fetc", "an encoded slash is not a separator")
        #expect(throws: RequestTargetError.self) { try Self.path("/a%5cb", .keep) }
    }

    @Test func aNormalTargetIsNeitherCopiedNorRewritten() throws {
        let text = "/api/v1/users/42?x=1&y"
        let target = try RequestTarget(parsing: text[...])
        #expect(!target.isRewritten && target.path == "/api/v1/users/42" && target.query == "x=1&y" && target.authority == nil)
        #expect(target.path.startIndex == text.startIndex, "a slice of the received text")
        #expect(try RequestTarget(parsing: "/a?"[...]).hasQuery)
        #expect(try RequestTarget(parsing: "*"[...]).path == "*")
    }

    @Test func anAbsoluteFormTargetRoutesOnItsAuthority() throws {
        let target = try RequestTarget(parsing: "http://internal.example:8080/x/../hostcheck?q"[...])
        #expect(target.authority == "internal.example:8080" && target.authorityHost == "internal.example")
        #expect(target.path == "/hostcheck" && target.query == "q" && target.isRewritten)
        #expect(try RequestTarget(parsing: "https://[::1]:9/"[...]).authorityHost == "[::1]")
        #expect(try RequestTarget(parsing: "http://h"[...]).path == "/")
        for refused in ["http://user:pw@h/", "http:///x", "http://"] {
            #expect(throws: RequestTargetError.self, "\(refused)") { try RequestTarget(parsing: refused[...]) }
        }
        let request = try DescribedRequest(target: "http://internal.example/x", headers: [("Host", "public.example")])
        #expect(request.host == "internal.example")
    }

    @Test func aRouteForOnePrefixCannotBeLeftThroughDotSegments() throws {
        let config = try FulcrumConfig.parse("""
            listen: [{ port: 8080 }]
            services: { a: { nodes: [{ name: a1, host: 127.0.0.1, port: 9001 }] } }
            routes: [{ name: public, match: { path_prefix: /public/ }, service: a }]
            """)
        let router = Router(config: config)
        #expect(router.route(try DescribedRequest(target: "/public/x")) != nil)
        for target in ["/public/../admin", "/public/%2e%2e/admin", "/public/./../admin"] {
            #expect(router.route(try DescribedRequest(target: target)) == nil, "\(target)")
        }
    }

    @Test func encodedSlashesIsAConfigurationChoice() throws {
        let base = "listen: [{ port: 8080 }]\nservices: { a: { nodes: [{ name: a1, host: 127.0.0.1, port: 9001 }] } }\n"
        #expect(try FulcrumConfig.parse(base).encodedSlashes == .refuse)
        #expect(try FulcrumConfig.parse(base + "encoded_slashes: keep\n").encodedSlashes == .keep)
        #expect(throws: ConfigError.self) { try FulcrumConfig.parse(base + "encoded_slashes: decode\n") }
    }
}
