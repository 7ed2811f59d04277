import NIOCore
import RealSockets
import Testing
@testable import FulcrumProxy

@Suite struct HTTPSRedirectTests {
    @Test func theLocationKeepsHostPathAndQueryAndNamesThePortUnless443() {
        #expect(HTTPSRedirect.location(host: "example.test", path: "/a/b", query: "x=1&y", port: 8443) == "https://example.test:8443/a/b?x=1&y")
        #expect(HTTPSRedirect.location(host: "Example.Test", path: "/", query: "", port: 443) == "https://Example.Test/")
        #expect(HTTPSRedirect.location(host: "[::1]", path: "", query: "", port: 443) == "https://[::1]/")
        #expect(HTTPSRedirect.location(host: "127.0.0.1", path: "/p", query: "", port: 8443) == "https://127.0.0.1:8443/p")
    }

    @Test func aHostThatIsNotAPlainNameGetsNoLocation() {
        // each of these would send a browser elsewhere than the host it asked for
        for host in ["evil.test@example.test", "evil.test/x", "a b", "[::1", "[::g]", "", "evil.test\\x", "evil.test#"] {
            #expect(HTTPSRedirect.location(host: host[...], path: "/", query: "", port: 443) == nil, "\(host)")
        }
        #expect(HTTPSRedirect.location(host: nil, path: "/", query: "", port: 443) == nil)
    }
}

/// A plaintext listener with `redirect_to_https`, over a real socket.
@Suite(.realSockets) struct HTTPSRedirectIntegrationTests {
    @Test func everyRequestIsAnswered308ToHTTPSOnOneKeepAliveConnectionAndNothingReachesANode() async throws {
        let fixture = try await ProxyFixture.start(backends: ["redirect-node"], listener: "{ address: 127.0.0.1, port: 0, redirect_to_https: 8443 }") { ports in
            "services: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(ports["redirect-node"]!) }] } }\ndefault: { service: web }\n"
        }
        defer { Task { await fixture.stop() } }
        let requests = "GET /a/./b?x=1 HTTP/1.1\r\nHost: example.test:8080\r\n\r\n"
            + "POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello"
            + "HEAD /h HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
            + "GET /x HTTP/1.1\r\nHost: evil.test@example.test\r\n\r\n"
            + "GET http://other.test/abs?q HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
        let result = try await RawClient.exchange(port: fixture.port, requests)
        let heads = result.text.components(separatedBy: "HTTP/1.1 ").dropFirst()
        let summary = heads.map { response in
            let status = String(response.prefix(3))
            let location = response.split(separator: "\r\n").first { $0.hasPrefix("Location: ") }.map { String($0.dropFirst(10)) } ?? "-"
            return "\(status) \(location)"
        }
        #expect(summary == [
            "308 https://example.test:8443/a/b?x=1",  // the path as routed (dot segments resolved)
            "308 https://example.test:8443/upload",  // its body read and dropped, the connection kept
            "308 https://[::1]:8443/h",
            "400 -",
            "308 https://other.test:8443/abs?q",  // an absolute-form target's authority is the host
        ], "\(result.text)")
        #expect(result.serverClosed)
        #expect(fixture.backends["redirect-node"]!.requests == 0, "nothing is proxied")
    }
}
