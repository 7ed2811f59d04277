import NIOCore
import NIOHTTP1
import Foundation
import Testing
import RealSockets

/// HTTP/1.1 framing through the proxy: ambiguous framing is refused, everything else forwarded.
@Suite(.realSockets) struct FramingIntegrationTests {
    static func fixture(_ name: String) async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: [name]) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p[name]!) }] } }\ndefault: { service: s }"
        }
    }

    @Test(arguments: [
        ("content-length and chunked", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("two content lengths", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
        ("invalid chunk size", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        ("chunked not last", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ("bad content length", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4x\r\n\r\nabcd"),
        ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    ])
    func smugglingShapesAreRejectedAndNeverForwarded(_ shape: String, _ request: String) async throws {
        let name = "smuggle-\(shape.replacingOccurrences(of: " ", with: "-"))"
        let fixture = try await Self.fixture(name)
        let result = try await RawClient.exchange(port: fixture.port, request)
        #expect(result.text.hasPrefix("HTTP/1.1 400 "), "\(shape): \(result.text)")
        #expect(result.serverClosed, "\(shape): the connection must be closed")
        #expect(fixture.backends[name]!.requests == 0, "\(shape): nothing reaches the node")
        await fixture.stop()
    }

    /// Without the fix, `Connection: Content-Length` (or `Transfer-Encoding`) removed the framing
    /// field while its body was forwarded: the node read the body as a second request that was
    /// never routed, limited or logged, and a partial one there would swallow the next client's.
    @Test(arguments: [
        "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 37\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: y",
        "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close, content-length\r\nContent-Length: 37\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: y",
        "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n25\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: y\r\n0\r\n\r\n",
    ])
    func aBodyFramedByAFieldNamedInConnectionIsOneRequestAtTheNode(_ attack: String) async throws {
        let fixture = try await ProxyFixture.start(backends: ["smuggle-connection"], workers: 1) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["smuggle-connection"]!) }] } }\ndefault: { service: s }"
        }
        let attacker = try await RawClient.exchange(port: fixture.port, attack, timeout: .milliseconds(500))
        #expect(attacker.text.hasPrefix("HTTP/1.1 200 OK") && attacker.text.hasSuffix("received 37\n"), "\(attacker.text)")
        // the next client takes the pooled connection and gets its own response
        let victim = try await RawClient.exchange(port: fixture.port, "GET /mine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(victim.text.hasPrefix("HTTP/1.1 200 OK") && victim.text.contains("request target /mine\n"), "\(victim.text)")
        #expect(fixture.backends["smuggle-connection"]!.requests == 2, "one request each, nothing smuggled")
        await fixture.stop()
    }

    /// Without normalisation these reached `/admin` through the `/public/` route.
    @Test func dotSegmentsCannotLeaveARoutesPrefix() async throws {
        let fixture = try await ProxyFixture.start(backends: ["dots-public"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["dots-public"]!) }] } }
            routes: [{ name: public, match: { path_prefix: /public/ }, service: s }]
            """
        }
        for target in ["/public/../admin", "/public/%2e%2e/admin", "/public/./%2E%2E/admin", "/public//../admin"] {
            let result = try await RawClient.exchange(port: fixture.port, "GET \(target) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(result.text.hasPrefix("HTTP/1.1 404 "), "\(target): \(result.text)")
        }
        for target in ["/public/..%2fadmin", "/public/..%5cadmin", "/public/..;/admin"] {
            let result = try await RawClient.exchange(port: fixture.port, "GET \(target) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(result.text.hasPrefix("HTTP/1.1 400 ") && result.serverClosed, "\(target): \(result.text)")
        }
        #expect(fixture.backends["dots-public"]!.requests == 0)
        // what stays inside the prefix is routed, and the node is sent the normalised path
        let inside = try await RawClient.exchange(port: fixture.port, "GET /public/a/../%62 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(inside.text.contains("request target /public/b\n"), "\(inside.text)")
        await fixture.stop()
    }

    /// RFC 9112 §3.2.2: the authority of an absolute-form target wins over Host. Before, the
    /// request was routed by Host and the node acted on the target's authority.
    @Test func anAbsoluteFormTargetIsRoutedAndSentByItsAuthority() async throws {
        let fixture = try await ProxyFixture.start(backends: ["authority-public", "authority-internal"]) { p in
            """
            services:
              public: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["authority-public"]!) }] }
              internal: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["authority-internal"]!) }] }
            routes:
              - { name: public, match: { host: public.example }, service: public }
              - { name: internal, match: { host: internal.example }, service: internal }
            """
        }
        let result = try await RawClient.exchange(
            port: fixture.port, "GET http://internal.example/hostcheck HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n")
        #expect(result.text.contains("authority-internal\n"), "\(result.text)")
        #expect(result.text.contains("host: internal.example\n") && result.text.contains("request target /hostcheck\n"), "\(result.text)")
        #expect(!result.text.contains("public.example"))
        await fixture.stop()
    }

    @Test func chunkedRequestBodiesAreStreamedThrough() async throws {
        let fixture = try await Self.fixture("chunked")
        let result = try await RawClient.exchange(
            port: fixture.port,
            "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(result.text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(result.text.hasSuffix("chunked received 11\n"))
        await fixture.stop()
    }

    /// An HTTP/1.0 request goes to the node as HTTP/1.0: it may have no Host (a node would refuse
    /// HTTP/1.1 without one), and the node must not answer it chunked. The pooled connection stays
    /// open between such requests.
    @Test func http10RequestsReachTheNodeAsHTTP10() async throws {
        let fixture = try await ProxyFixture.start(backends: ["version"], workers: 1) { p in
            "services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["version"]!) }] } }\ndefault: { service: s }"
        }
        let hostless = try await RawClient.exchange(port: fixture.port, "GET /version HTTP/1.0\r\n\r\n")
        #expect(hostless.text.hasPrefix("HTTP/1.1 200 OK"), "\(hostless.text)")
        #expect(hostless.text.hasSuffix("\r\n\r\nversion saw HTTP/1.0\n"), "\(hostless.text)")
        let kept = try await RawClient.exchange(
            port: fixture.port, "GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(kept.text.components(separatedBy: "version saw HTTP/1.0\n").count == 2, "\(kept.text)")
        #expect(kept.text.hasSuffix("version saw HTTP/1.1\n"), "\(kept.text)")
        #expect(fixture.backends["version"]!.accepted == 1, "the node's connection was not kept for the next requests")
        await fixture.stop()
    }

    @Test func expectContinueIsRelayed() async throws {
        let fixture = try await Self.fixture("continue")
        let client = try await fixture.client()
        let response = try await client.request(.POST, "/upload", headers: [("Expect", "100-continue")], body: "0123456789")
        #expect(response.informational == [.continue])
        #expect(response.status == .ok)
        #expect(response.body == "continue received 10\n")
        await client.close()
        await fixture.stop()
    }

    @Test func headResponsesHaveNoBody() async throws {
        let fixture = try await Self.fixture("head")
        let client = try await fixture.client()
        let head = try await client.request(.HEAD, "/status/200")
        #expect(head.status == .ok)
        #expect(head.body.isEmpty)
        #expect(head.headers.first(name: "Content-Length") == "16")
        // the connection is still in sync afterwards
        #expect(try await client.request(.GET, "/status/200").body == "head status 200\n")
        await client.close()
        await fixture.stop()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let fixture = try await Self.fixture("pipeline")
        let result = try await RawClient.exchange(
            port: fixture.port,
            "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\nGET /slow/50 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let statuses = result.text.components(separatedBy: .newlines).filter { $0.hasPrefix("HTTP/1.1 ") }
        #expect(statuses == ["HTTP/1.1 201 Created", "HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted"], "\(result.text)")
        #expect(result.serverClosed)
        await fixture.stop()
    }

    @Test func aSwitchNobodyAskedForIsA502() async throws {
        let fixture = try await Self.fixture("switch")
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/status/101").status == .badGateway)
        await client.close()
        await fixture.stop()
    }

    @Test func upstreamStatusesAndErrorsPassThrough() async throws {
        let fixture = try await Self.fixture("statuses")
        let client = try await fixture.client()
        for code in [204, 304, 404, 500, 503] {
            let response = try await client.request(.GET, "/status/\(code)")
            #expect(response.status.code == UInt(code))
            #expect(response.backend == "statuses")
        }
        await client.close()
        await fixture.stop()
    }
}
