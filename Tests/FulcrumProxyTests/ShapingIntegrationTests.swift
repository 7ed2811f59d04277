import FulcrumCore
import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Routes that change the request on its way to the node and the response on its way back, and
/// routes that answer by themselves, through a real proxy on 127.0.0.1 to a real backend.
@Suite(.realSockets) struct ShapingIntegrationTests {
    @Test func theNodeSeesTheStrippedAndRewrittenPathWithTheQueryAndTheRouteHeaders() async throws {
        let fixture = try await ProxyFixture.start(backends: ["shape"]) { p in
            """
            services: { orders: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["shape"]!) }] } }
            routes:
              - name: orders
                match: { path_prefix: /open-api/orders/ }
                service: orders
                strip_prefix: /open-api
                rewrite: { path_regex: '^/orders/(\\d+)$', to: '/v2/orders/$1' }
                host: orders.internal
                request_headers:
                  set: { X-Gateway: fulcrum, X-Seen-Path: "$path from $client_ip" }
                  add: { X-Trace: "1" }
                  remove: [Cookie]
                response_headers:
                  set: { Strict-Transport-Security: "max-age=31536000" }
                  remove: [X-Backend]
            """
        }
        let client = try await fixture.client()
        let rewritten = try await client.request(.GET, "/open-api/orders/42?expand=items", headers: [
            ("Host", "api.example.com"), ("Cookie", "session=secret"), ("X-Gateway", "spoofed"),
        ])
        #expect(rewritten.status == .ok)
        let seen = rewritten.body
        #expect(seen.contains("request target /v2/orders/42?expand=items\n"))
        #expect(seen.contains("host: orders.internal\n"))
        #expect(!seen.contains("\nhost: api.example.com\n"))
        #expect(seen.contains("x-forwarded-host: api.example.com\n"))  // what the client asked for, still told
        #expect(seen.contains("x-gateway: fulcrum\n"))
        #expect(!seen.contains("spoofed"))
        #expect(seen.contains("x-seen-path: /v2/orders/42 from 127.0.0.1\n"))
        #expect(seen.contains("x-trace: 1\n"))
        #expect(!seen.contains("secret"))
        #expect(rewritten.headers.first(name: "Strict-Transport-Security") == "max-age=31536000")
        #expect(rewritten.headers.first(name: "X-Backend") == nil)

        // the expression does not match: only the prefix goes
        let stripped = try await client.request(.GET, "/open-api/orders/list")
        #expect(stripped.body.contains("request target /orders/list\n"))
        await client.close()
        await fixture.stop()
    }

    @Test func aStrippedPrefixOnlyGoesAtASegmentBoundaryAndLeavesAtLeastASlash() async throws {
        let fixture = try await ProxyFixture.start(backends: ["strip"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["strip"]!) }] } }
            routes:
              - { name: api, match: { path_prefix: /api }, service: s, strip_prefix: /api }
            """
        }
        let client = try await fixture.client()
        #expect(try await client.request(.GET, "/api/users?x=1").body.contains("request target /users?x=1\n"))
        #expect(try await client.request(.GET, "/api").body.contains("request target /\n"))
        #expect(try await client.request(.GET, "/apix/users").body.contains("request target /apix/users\n"))
        // dot segments are resolved before the prefix is looked at: no way around it
        #expect(try await client.request(.GET, "/api/../api/v1").body.contains("request target /v1\n"))
        await client.close()
        await fixture.stop()
    }

    @Test func redirectAndRespondRoutesAnswerWithoutANode() async throws {
        let fixture = try await ProxyFixture.start(backends: ["local"]) { p in
            """
            services: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["local"]!) }] } }
            routes:
              - name: old
                match: { path_prefix: /old/ }
                strip_prefix: /old
                redirect: { to: 'https://example.com/new$path_and_query', status: 301 }
              - name: item
                match: { path_regex: '^/item/([a-z]+)$' }
                redirect: { to: 'https://$host/items/$1' }
              - name: maintenance
                match: { path_prefix: /beta/ }
                respond: { status: 503, body: "back soon\\n", content_type: text/plain }
                response_headers: { set: { Retry-After: "120" } }
            default: { service: s }
            """
        }
        let client = try await fixture.client()
        let moved = try await client.request(.GET, "/old/page?a=1")
        #expect(moved.status == .movedPermanently)
        #expect(moved.headers.first(name: "Location") == "https://example.com/new/page?a=1")
        let item = try await client.request(.GET, "/item/shoe", headers: [("Host", "shop.example.com:8080")])
        #expect(item.status == .found)
        #expect(item.headers.first(name: "Location") == "https://shop.example.com/items/shoe")
        let maintenance = try await client.request(.POST, "/beta/x", body: "ignored")
        #expect(maintenance.status == .serviceUnavailable)
        #expect(maintenance.body == "back soon\n")
        #expect(maintenance.headers.first(name: "Content-Type") == "text/plain")
        #expect(maintenance.headers.first(name: "Retry-After") == "120")
        // none of them reached the node, and the connection is still usable
        #expect(fixture.backends["local"]!.requests == 0)
        #expect(try await client.request(.GET, "/other").backend == "local")
        await client.close()
        await fixture.stop()
    }
}

/// CORS answered by Fulcrum: preflights never reach the node, allowed origins get the policy's
/// fields on the node's responses, other origins get none (not even the node's own).
@Suite(.realSockets) struct CORSIntegrationTests {
    @Test func preflightsAreAnsweredAndOnlyAllowedOriginsGetCORSFields() async throws {
        let fixture = try await ProxyFixture.start(backends: ["cors"]) { p in
            """
            services:
              api:
                nodes: [{ name: n, host: 127.0.0.1, port: \(p["cors"]!) }]
                cors: { origins: ['https://app.example.com'], methods: [GET, POST], headers: [Content-Type], credentials: true, max_age: 10m, expose_headers: [X-Backend] }
              open: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["cors"]!) }], cors: { origins: ['*'] } }
            routes:
              - { name: api, match: { path_prefix: /api/ }, service: api }
              - { name: public, match: { path_prefix: /public/ }, service: open }
            """
        }
        let client = try await fixture.client()
        let origin = ("Origin", "https://app.example.com")
        let preflight = try await client.request(.OPTIONS, "/api/orders", headers: [
            origin, ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type"),
        ])
        #expect(preflight.status == .noContent)
        #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example.com")
        #expect(preflight.headers.first(name: "Access-Control-Allow-Credentials") == "true")
        #expect(preflight.headers.first(name: "Access-Control-Allow-Methods") == "GET, POST")
        #expect(preflight.headers.first(name: "Access-Control-Allow-Headers") == "Content-Type")
        #expect(preflight.headers.first(name: "Access-Control-Max-Age") == "600")
        #expect(preflight.headers.first(name: "Content-Length") == nil)
        let wrongMethod = try await client.request(.OPTIONS, "/api/orders", headers: [origin, ("Access-Control-Request-Method", "DELETE")])
        #expect(wrongMethod.status == .forbidden && wrongMethod.headers.first(name: "Access-Control-Allow-Origin") == nil)
        let wrongHeader = try await client.request(.OPTIONS, "/api/orders", headers: [
            origin, ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "x-secret"),
        ])
        #expect(wrongHeader.status == .forbidden)
        #expect(fixture.backends["cors"]!.requests == 0)

        let allowed = try await client.request(.GET, "/api/orders", headers: [origin])
        #expect(allowed.status == .ok)
        #expect(allowed.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example.com")
        #expect(allowed.headers[canonicalForm: "Vary"].contains("Origin"))
        #expect(allowed.headers.first(name: "Access-Control-Expose-Headers") == "X-Backend")
        let other = try await client.request(.GET, "/api/orders", headers: [("Origin", "https://evil.example.com")])
        #expect(other.status == .ok)
        #expect(other.headers.first(name: "Access-Control-Allow-Origin") == nil)
        #expect(other.headers.first(name: "Access-Control-Allow-Credentials") == nil)
        let explained = RouteReport(config: fixture.server.runtime.config, request: try DescribedRequest(
            target: "/api/orders", headers: [(name: "Origin", value: "https://evil.example.com")]))
        #expect(explained.shaping == ["CORS for https://app.example.com (preflights answered by Fulcrum): origin https://evil.example.com not allowed: no CORS fields"])
        let anyOrigin = try await client.request(.GET, "/public/x", headers: [("Origin", "https://anyone.example")])
        #expect(anyOrigin.headers.first(name: "Access-Control-Allow-Origin") == "*")
        await client.close()
        await fixture.stop()
    }
}
