import FulcrumCore
import FulcrumHTTP1
import NIOCore

/// The head changes a reverse proxy makes in each direction, written straight from the received
/// bytes in one pass over the fields: each kept field line is copied as it arrived.
enum HeaderRewriter {
    /// What a field is to a proxy.
    enum Role {
        /// Describes one connection (RFC 9110 §7.6.1): never forwarded.
        case hopByHop
        /// `Upgrade`: hop-by-hop, except on a protocol switch.
        case upgrade
        /// `X-Forwarded-For`: extended with the client's address on requests.
        case forwardedFor
        /// `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Real-IP`: set by Fulcrum on requests.
        case forwarding
        /// `Content-Length`, `Transfer-Encoding`: how Fulcrum framed the body it forwards.
        case framing
        /// `Host`: what Fulcrum routed on.
        case host
        case endToEnd
    }

    /// The role of the field `raw[start..<end]` names. One length switch rejects most names
    /// without comparing bytes.
    static func role(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Role {
        switch end - start {
        case 2 where HTTPBytes.equalsIgnoringCase(raw, start, end, "te"): return .hopByHop
        case 4 where HTTPBytes.equalsIgnoringCase(raw, start, end, "host"): return .host
        case 7 where HTTPBytes.equalsIgnoringCase(raw, start, end, "trailer"): return .hopByHop
        case 7 where HTTPBytes.equalsIgnoringCase(raw, start, end, "upgrade"): return .upgrade
        case 9 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-real-ip"): return .forwarding
        case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "connection"): return .hopByHop
        case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "keep-alive"): return .hopByHop
        case 14 where HTTPBytes.equalsIgnoringCase(raw, start, end, "content-length"): return .framing
        case 15 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-for"): return .forwardedFor
        case 16 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-connection"): return .hopByHop
        case 16 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-host"): return .forwarding
        case 17 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-proto"): return .forwarding
        case 17 where HTTPBytes.equalsIgnoringCase(raw, start, end, "transfer-encoding"): return .framing
        case 18 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-authenticate"): return .hopByHop
        case 19 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-authorization"): return .hopByHop
        default: return .endToEnd
        }
    }

    /// The other header names the `Connection` fields list (offsets into the head); they are
    /// hop-by-hop for this message. Only called when there are some.
    ///
    /// A name that frames the message or that Fulcrum routed on (`Content-Length`,
    /// `Transfer-Encoding`, `Host`, the request ID header) is never taken from this list: the
    /// body Fulcrum forwards is framed by those fields as it read them, and a node that got the
    /// body without its framing would read its bytes as further requests (request smuggling:
    /// `Connection: Content-Length` with a body that is itself a request). nginx and HAProxy
    /// likewise forward exactly one request for such a message.
    static func namesListedInConnection(_ raw: UnsafeRawBufferPointer, _ fields: [HTTPField], requestIDHeader: String) -> [(Int, Int)] {
        var names: [(Int, Int)] = []
        for field in fields where HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), "connection") {
            HTTPFieldSection.forEachElement(raw, field) { start, end in
                switch role(raw, start, end) {
                case .framing, .host: return
                default: if HTTPBytes.equalsIgnoringCase(raw, start, end, requestIDHeader) { return }
                }
                names.append((start, end))
            }
        }
        return names
    }

    /// Whether the field is one of `names` (a route's removed fields).
    private static func isNamed(_ raw: UnsafeRawBufferPointer, _ field: HTTPField, in names: [String]) -> Bool {
        names.contains { HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), $0) }
    }

    private static func isListed(_ raw: UnsafeRawBufferPointer, _ field: HTTPField, in names: [(Int, Int)]) -> Bool {
        let start = Int(field.nameStart)
        let end = Int(field.nameEnd)
        return names.contains { name in HTTPBytes.equalsIgnoringCase(raw, start, end, UnsafeRawBufferPointer(rebasing: raw[name.0..<name.1])) }
    }

    /// Writes the head sent to the node to `out`: the request line with the normalised target in
    /// origin form (the received bytes when normalising changed nothing), hop-by-hop fields removed
    /// (`Upgrade` kept for a protocol switch), forwarding fields set, and the request ID added when
    /// the client sent none. An absolute-form target's authority becomes the `Host` (RFC 9112
    /// §3.2.2: the node must act on the host Fulcrum routed on). An HTTP/1.0 request stays
    /// HTTP/1.0 (with `Connection: keep-alive`, so that the node keeps the pooled connection open
    /// when it can): it may lack a Host, which HTTP/1.1 requires, and its response must not be
    /// chunked, which an HTTP/1.0 client cannot read.
    ///
    /// A route's shaping (`shaped`, `hostOverride`) replaces the path (the query kept), the
    /// `Host`, and removes and adds the fields it names. `dropsExpect` leaves out `Expect` when
    /// Fulcrum already answered it (the body was read to route the request).
    static func writeUpstreamRequest(
        _ request: HeadRoutingRequest, clientIP: String, overTLS: Bool, requestIDHeader: String, requestID: RequestID,
        shaped: RequestShaper.Shaped? = nil, hostOverride: String? = nil, dropsExpect: Bool = false, to out: inout ByteBuffer
    ) {
        let head = request.head
        let target = request.target
        // Each received line is copied at most once and never grows (the reader refuses a line
        // without its CR; the `X-Forwarded-For` values replace their lines; a rewritten target is
        // never longer than the received one); the host value twice, or the authority twice.
        let hostValue = head.hostField.map { head.fields[$0] }
        let hostLength = target.authority?.utf8.count ?? hostValue.map { Int($0.valueEnd - $0.valueStart) } ?? 0
        var maximumLength = head.bytes.readableBytes + 2 * hostLength + clientIP.utf8.count + request.clientIP.utf8.count
            + (requestID.isGenerated ? HeadWriter.fieldLength(requestIDHeader, requestID) : 0) + addedRequestFieldsLength
        if let shaped {
            maximumLength += (shaped.path?.utf8.count ?? 0) + 1 + target.query.utf8.count + (hostOverride.map { $0.utf8.count + 8 } ?? 0)
            for field in shaped.addedRequestFields { maximumLength += HeadWriter.fieldLength(field.name, field.value) }
        }
        head.bytes.withUnsafeReadableBytes { raw in
            out.writeHead(maximumLength: maximumLength) { out in
                if let path = shaped?.path {
                    out.append(UnsafeRawBufferPointer(rebasing: raw[0..<head.targetStart]))
                    out.append(path)
                    if target.hasQuery {
                        out.append("?")
                        out.append(target.query)
                    }
                } else if target.isRewritten {
                    out.append(UnsafeRawBufferPointer(rebasing: raw[0..<head.targetStart]))
                    target.forEachOriginFormPart { out.append($0) }
                } else {
                    out.append(UnsafeRawBufferPointer(rebasing: raw[0..<head.targetEnd]))
                }
                if head.minorVersion == 1 {
                    out.append(" HTTP/1.1\r\n")
                } else {
                    out.append(head.isUpgrade ? " HTTP/1.0\r\n" : " HTTP/1.0\r\nConnection: keep-alive\r\n")
                }
                if let hostOverride {
                    out.append("Host: ")
                    out.append(hostOverride)
                    out.append("\r\n")
                } else if let authority = target.authority {
                    out.append("Host: ")
                    out.append(authority)
                    out.append("\r\n")
                }
                let listed = head.connection.namesOtherFields ? namesListedInConnection(raw, head.fields, requestIDHeader: requestIDHeader) : []
                let removed = shaped?.removedRequestFields ?? []
                var forwardedFor = false
                for field in head.fields {
                    switch role(raw, Int(field.nameStart), Int(field.nameEnd)) {
                    case .hopByHop, .forwarding: continue
                    case .forwardedFor: forwardedFor = true; continue
                    case .upgrade where !head.isUpgrade: continue
                    case .host where target.authority != nil || hostOverride != nil: continue
                    case .framing, .host, .upgrade: if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                    case .endToEnd:
                        if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                        if !removed.isEmpty && isNamed(raw, field, in: removed) { continue }
                        if dropsExpect && HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), "expect") { continue }
                    }
                    out.append(UnsafeRawBufferPointer(rebasing: raw[Int(field.nameStart)..<Int(field.valueEnd)]))
                    out.append("\r\n")
                }
                if let shaped { for field in shaped.addedRequestFields { out.appendField(field.name, field.value) } }
                if head.isUpgrade { out.append("Connection: upgrade\r\n") }
                out.append("X-Forwarded-For: ")
                if forwardedFor {
                    for field in head.fields where role(raw, Int(field.nameStart), Int(field.nameEnd)) == .forwardedFor {
                        out.append(UnsafeRawBufferPointer(rebasing: raw[Int(field.valueStart)..<Int(field.valueEnd)]))
                        out.append(", ")
                    }
                }
                out.append(clientIP)
                out.append(overTLS ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n")
                if let authority = target.authority {
                    out.append("X-Forwarded-Host: ")
                    out.append(authority)
                    out.append("\r\n")
                } else if let hostValue {
                    out.append("X-Forwarded-Host: ")
                    out.append(UnsafeRawBufferPointer(rebasing: raw[Int(hostValue.valueStart)..<Int(hostValue.valueEnd)]))
                    out.append("\r\n")
                }
                out.append("X-Real-IP: ")
                out.append(request.clientIP)
                out.append("\r\n")
                if requestID.isGenerated { out.appendField(requestIDHeader, requestID) }
                out.append("\r\n")
            }
        }
    }

    /// The most the fixed text of ``writeUpstreamRequest(_:clientIP:overTLS:requestIDHeader:requestID:to:)``
    /// adds: `Connection: upgrade` or `keep-alive`, the forwarding field names and line ends, the
    /// empty line.
    private static let addedRequestFieldsLength = 128

    /// Writes the head sent to the client to `out`: the node's status line as HTTP/1.1, its
    /// hop-by-hop fields removed, the request ID added when the node sent none, a split's
    /// `Set-Cookie`, and `Connection: close` (or `keep-alive` for an HTTP/1.0 client that keeps the
    /// connection).
    /// A route's `response_headers` (`edits`) remove and add fields.
    static func writeClientResponse(
        _ head: ResponseHead, requestIDHeader: String, requestID: RequestID, setCookie: String?, edits: ResponseFieldEdits? = nil,
        close: Bool, clientMinorVersion: Int, to out: inout ByteBuffer
    ) {
        // Each received line is copied at most once and never grows, except that a status line
        // without a reason gains the space before it.
        var maximumLength = head.bytes.readableBytes + 1
            + HeadWriter.fieldLength(requestIDHeader, requestID) + (setCookie.map { HeadWriter.fieldLength("Set-Cookie", $0) } ?? 0)
            + addedResponseFieldsLength
        if let edits { for field in edits.added { maximumLength += HeadWriter.fieldLength(field.name, field.value) } }
        let switching = head.status == 101
        head.bytes.withUnsafeReadableBytes { raw in
            out.writeHead(maximumLength: maximumLength) { out in
                out.append("HTTP/1.1 ")
                out.append(UnsafeRawBufferPointer(rebasing: raw[9..<12]))
                out.append(" ")
                out.append(UnsafeRawBufferPointer(rebasing: raw[head.reasonStart..<head.reasonEnd]))
                out.append("\r\n")
                let listed = head.connection.namesOtherFields ? namesListedInConnection(raw, head.fields, requestIDHeader: requestIDHeader) : []
                var hasRequestID = false
                for field in head.fields {
                    switch role(raw, Int(field.nameStart), Int(field.nameEnd)) {
                    case .hopByHop: continue
                    case .upgrade where !switching: continue
                    case .framing, .upgrade:
                        if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                    case .forwardedFor, .forwarding, .host, .endToEnd:
                        if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                        if let edits, !edits.removed.isEmpty, isNamed(raw, field, in: edits.removed) { continue }
                    }
                    if !hasRequestID { hasRequestID = HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), requestIDHeader) }
                    out.append(UnsafeRawBufferPointer(rebasing: raw[Int(field.nameStart)..<Int(field.valueEnd)]))
                    out.append("\r\n")
                }
                if !hasRequestID { out.appendField(requestIDHeader, requestID) }
                if let setCookie { out.appendField("Set-Cookie", setCookie) }
                if let edits { for field in edits.added { out.appendField(field.name, field.value) } }
                if switching {
                    out.append("Connection: upgrade\r\n")
                } else if close {
                    out.append("Connection: close\r\n")
                } else if clientMinorVersion == 0 {
                    out.append("Connection: keep-alive\r\n")
                }
                out.append("\r\n")
            }
        }
    }

    /// The most the fixed text of ``writeClientResponse(_:requestIDHeader:requestID:setCookie:close:clientMinorVersion:to:)``
    /// adds: the `Connection` field and the empty line.
    private static let addedResponseFieldsLength = 32
}
