import NIOCore
import NIOHTTP1
import Testing
import RealSockets

/// Routes that decide on the request body, through a real proxy on loopback: the body is read
/// only when no other route takes the request, and reaches the node unchanged.
@Suite(.realSockets) struct BodyRoutingIntegrationTests {
    static func start() async throws -> ProxyFixture {
        try await ProxyFixture.start(backends: ["acme", "gold", "rest"]) { p in
            """
            services:
              acme: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["acme"]!) }] }
              gold: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["gold"]!) }] }
              rest: { nodes: [{ name: n, host: 127.0.0.1, port: \(p["rest"]!) }] }
            routes:
              - { name: acme, match: { path_prefix: /upload, methods: [POST], body: { regex: '"tenant":"acme"', max_bytes: 1KiB } }, service: acme }
              - { name: gold, match: { path_prefix: /upload, body: { json: { path: customer.tier, equals: gold } } }, service: gold }
              - { name: version, match: { path: /version }, service: rest }
            default: { service: rest }
            """
        }
    }

    @Test func theFirstBodyRouteTheBodySatisfiesTakesItAndTheNodeGetsItWhole() async throws {
        let fixture = try await Self.start()
        let client = try await fixture.client()
        let acme = #"{"tenant":"acme","items":[1,2,3]}"#
        let toAcme = try await client.request(.POST, "/upload", headers: [("Content-Type", "application/json")], body: acme)
        #expect(toAcme.body == "acme received \(acme.utf8.count)\n")
        let gold = #"{"customer":{"tier":"gold"},"tenant":"other"}"#
        #expect(try await client.request(.POST, "/upload", body: gold).body == "gold received \(gold.utf8.count)\n")
        #expect(try await client.request(.POST, "/upload", body: #"{"customer":{"tier":"silver"}}"#).backend == "rest")
        #expect(try await client.request(.POST, "/upload", body: "not json at all").backend == "rest")
        // a route without a body condition is not held back: it matches on the head alone
        #expect(try await client.request(.GET, "/version").body == "rest saw HTTP/1.1\n")
        await client.close()

        // a chunked body, and a client that waits for 100 Continue before sending it
        let connection = try await RawConnection.connect(port: fixture.port)
        try await connection.send(Array("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n".utf8))
        #expect(try await connection.receiveHead().hasPrefix("HTTP/1.1 100 Continue"))
        try await connection.send(Array("f\r\n{\"tenant\":\"acme\r\n2\r\n\"}\r\n0\r\n\r\n".utf8))
        let head = try await connection.receiveHead()
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.contains("X-Backend: acme"))
        await connection.close()
        await fixture.stop()
    }

    @Test func aBodyLargerThanTheRoutesReadIsRefusedWith413() async throws {
        let fixture = try await Self.start()
        let client = try await fixture.client()
        let large = String(repeating: "x", count: 70_000)  // more than gold's 64 KiB, the largest candidate
        let refused = try await client.request(.POST, "/upload", body: large)
        #expect(refused.status == .payloadTooLarge)
        #expect(fixture.backends.values.allSatisfy { $0.requests == 0 })
        await client.close()
        await fixture.stop()
    }
}
