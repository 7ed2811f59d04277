import NIOHTTP1

/// The header changes a reverse proxy makes in each direction, in one pass over the headers.
enum HeaderRewriter {
    /// Whether `name` is a hop-by-hop header: one that describes a single connection and must not
    /// be forwarded (RFC 9110 §7.6.1), or one named in the message's `Connection` header.
    /// `Transfer-Encoding` is kept: it frames the body that is streamed on as it arrived.
    static func isHopByHop(_ name: String, connectionTokens: [String]) -> Bool {
        let isStandard: Bool
        switch name.utf8.count {  // one length switch rejects most names without comparing bytes
        case 2: isStandard = equalsIgnoringCase(name, "te")
        case 7: isStandard = equalsIgnoringCase(name, "trailer") || equalsIgnoringCase(name, "upgrade")
        case 10: isStandard = equalsIgnoringCase(name, "connection") || equalsIgnoringCase(name, "keep-alive")
        case 16: isStandard = equalsIgnoringCase(name, "proxy-connection")
        case 18: isStandard = equalsIgnoringCase(name, "proxy-authenticate")
        case 19: isStandard = equalsIgnoringCase(name, "proxy-authorization")
        default: isStandard = false
        }
        return isStandard || (!connectionTokens.isEmpty && connectionTokens.contains { equalsIgnoringCase(name, $0) })
    }

    /// The extra header names listed in `Connection` headers (not `close`, `keep-alive`, `upgrade`),
    /// lower-cased. Allocates only when there are some.
    static func connectionTokens(_ headers: HTTPHeaders) -> [String] {
        var tokens: [String] = []
        for (name, value) in headers where equalsIgnoringCase(name, "connection") {
            for token in value.split(separator: ",") {
                let trimmed = token.drop { $0 == " " || $0 == "\t" }
                if !trimmed.isEmpty, !equalsIgnoringCase(trimmed, "close"), !equalsIgnoringCase(trimmed, "keep-alive"),
                    !equalsIgnoringCase(trimmed, "upgrade")
                {
                    tokens.append(trimmed.lowercased())
                }
            }
        }
        return tokens
    }

    /// The head sent to the node: hop-by-hop headers removed (kept for upgrades), forwarding headers
    /// set, the request ID added when the client sent none.
    static func upstreamRequest(
        _ head: HTTPRequestHead, clientIP: String, requestIDHeader: String, requestID: String, generatedID: Bool, isUpgrade: Bool
    ) -> HTTPRequestHead {
        let tokens = connectionTokens(head.headers)
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 6)
        var forwardedFor: String? = nil
        var forwardedHost: String? = nil
        for (name, value) in head.headers {
            if name.utf8.first == UInt8(ascii: "x") || name.utf8.first == UInt8(ascii: "X") {
                if equalsIgnoringCase(name, "x-forwarded-for") {
                    forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                    continue
                }
                if equalsIgnoringCase(name, "x-forwarded-proto") || equalsIgnoringCase(name, "x-forwarded-host")
                    || equalsIgnoringCase(name, "x-real-ip")
                {
                    continue
                }
            }
            if equalsIgnoringCase(name, "host") { forwardedHost = value }
            if isHopByHop(name, connectionTokens: tokens) {
                if isUpgrade, equalsIgnoringCase(name, "upgrade") { headers.add(name: name, value: value) }
                continue
            }
            headers.add(name: name, value: value)
        }
        if isUpgrade { headers.add(name: "Connection", value: "upgrade") }
        headers.add(name: "X-Forwarded-For", value: forwardedFor.map { "\($0), \(clientIP)" } ?? clientIP)
        headers.add(name: "X-Forwarded-Proto", value: "http")
        if let forwardedHost { headers.add(name: "X-Forwarded-Host", value: forwardedHost) }
        headers.add(name: "X-Real-IP", value: clientIP)
        if generatedID { headers.add(name: requestIDHeader, value: requestID) }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The head sent to the client: the node's hop-by-hop headers removed, the request ID and
    /// `Connection: close` added as needed. Headers are copied only when something changes.
    static func clientResponse(
        _ head: HTTPResponseHead, requestIDHeader: String, requestID: String, close: Bool, keepUpgrade: Bool = false
    ) -> HTTPResponseHead {
        var response = head
        response.version = .http1_1
        let tokens = connectionTokens(head.headers)
        if head.headers.contains(where: { isHopByHop($0.name, connectionTokens: tokens) }) {
            var headers = HTTPHeaders()
            headers.reserveCapacity(head.headers.count + 2)
            for (name, value) in head.headers where !isHopByHop(name, connectionTokens: tokens) {
                headers.add(name: name, value: value)
            }
            if keepUpgrade {
                headers.add(name: "Connection", value: "upgrade")
                for value in head.headers[canonicalForm: "upgrade"] { headers.add(name: "Upgrade", value: String(value)) }
            }
            response.headers = headers
        }
        if !response.headers.contains(name: requestIDHeader) {
            response.headers.add(name: requestIDHeader, value: requestID)
        }
        if close { response.headers.add(name: "Connection", value: "close") }
        return response
    }

    static func equalsIgnoringCase<S: StringProtocol>(_ a: S, _ lowered: String) -> Bool {
        guard a.utf8.count == lowered.utf8.count else { return false }
        for (x, y) in zip(a.utf8, lowered.utf8) where x != y {
            guard x | 0x20 == y, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(y) else { return false }
        }
        return true
    }
}
