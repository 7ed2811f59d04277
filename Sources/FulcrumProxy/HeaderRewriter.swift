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
        case endToEnd
    }

    /// The role of the field `raw[start..<end]` names. One length switch rejects most names
    /// without comparing bytes.
    static func role(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Role {
        switch end - start {
        case 2 where HTTPBytes.equalsIgnoringCase(raw, start, end, "te"): return .hopByHop
        case 7 where HTTPBytes.equalsIgnoringCase(raw, start, end, "trailer"): return .hopByHop
        case 7 where HTTPBytes.equalsIgnoringCase(raw, start, end, "upgrade"): return .upgrade
        case 9 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-real-ip"): return .forwarding
        case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "connection"): return .hopByHop
        case 10 where HTTPBytes.equalsIgnoringCase(raw, start, end, "keep-alive"): return .hopByHop
        case 15 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-for"): return .forwardedFor
        case 16 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-connection"): return .hopByHop
        case 16 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-host"): return .forwarding
        case 17 where HTTPBytes.equalsIgnoringCase(raw, start, end, "x-forwarded-proto"): return .forwarding
        case 18 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-authenticate"): return .hopByHop
        case 19 where HTTPBytes.equalsIgnoringCase(raw, start, end, "proxy-authorization"): return .hopByHop
        default: return .endToEnd
        }
    }

    /// The other header names the `Connection` fields list (offsets into the head); they are
    /// hop-by-hop for this message. Only called when there are some.
    static func namesListedInConnection(_ raw: UnsafeRawBufferPointer, _ fields: [HTTPField]) -> [(Int, Int)] {
        var names: [(Int, Int)] = []
        for field in fields where HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), "connection") {
            HTTPFieldSection.forEachElement(raw, field) { start, end in names.append((start, end)) }
        }
        return names
    }

    private static func isListed(_ raw: UnsafeRawBufferPointer, _ field: HTTPField, in names: [(Int, Int)]) -> Bool {
        let start = Int(field.nameStart)
        let end = Int(field.nameEnd)
        return names.contains { name in HTTPBytes.equalsIgnoringCase(raw, start, end, UnsafeRawBufferPointer(rebasing: raw[name.0..<name.1])) }
    }

    /// The head sent to the node: the request line as received with version HTTP/1.1, hop-by-hop
    /// fields removed (`Upgrade` kept for a protocol switch), forwarding fields set, and the
    /// request ID added when the client sent none.
    static func upstreamRequest(
        _ head: RequestHead, clientIP: String, requestIDHeader: String, requestID: String, generatedID: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: head.bytes.readableBytes + 128 + 2 * clientIP.utf8.count + requestID.utf8.count)
        head.bytes.withUnsafeReadableBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[0..<head.targetEnd]))
            out.writeStaticString(" HTTP/1.1\r\n")
            let listed = head.connection.namesOtherFields ? namesListedInConnection(raw, head.fields) : []
            var forwardedFor = false
            for field in head.fields {
                switch role(raw, Int(field.nameStart), Int(field.nameEnd)) {
                case .hopByHop, .forwarding: continue
                case .forwardedFor: forwardedFor = true; continue
                case .upgrade where !head.isUpgrade: continue
                case .upgrade, .endToEnd: if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(field.nameStart)..<Int(field.valueEnd)]))
                out.writeStaticString("\r\n")
            }
            if head.isUpgrade { out.writeStaticString("Connection: upgrade\r\n") }
            out.writeStaticString("X-Forwarded-For: ")
            if forwardedFor {
                for field in head.fields where role(raw, Int(field.nameStart), Int(field.nameEnd)) == .forwardedFor {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(field.valueStart)..<Int(field.valueEnd)]))
                    out.writeStaticString(", ")
                }
            }
            out.writeString(clientIP)
            out.writeStaticString("\r\nX-Forwarded-Proto: http\r\n")
            if let host = head.hostField.map({ head.fields[$0] }) {
                out.writeStaticString("X-Forwarded-Host: ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(host.valueStart)..<Int(host.valueEnd)]))
                out.writeStaticString("\r\n")
            }
            out.writeStaticString("X-Real-IP: ")
            out.writeString(clientIP)
            out.writeStaticString("\r\n")
        }
        if generatedID { writeField(&out, requestIDHeader, requestID) }
        out.writeStaticString("\r\n")
        return out
    }

    /// The head sent to the client: the node's status line as HTTP/1.1, its hop-by-hop fields
    /// removed, the request ID added when the node sent none, a split's `Set-Cookie`, and
    /// `Connection: close` (or `keep-alive` for an HTTP/1.0 client that keeps the connection).
    static func clientResponse(
        _ head: ResponseHead, requestIDHeader: String, requestID: String, setCookie: String?, close: Bool, clientMinorVersion: Int,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: head.bytes.readableBytes + 96 + requestID.utf8.count + (setCookie?.utf8.count ?? 0))
        let switching = head.status == 101
        var hasRequestID = false
        head.bytes.withUnsafeReadableBytes { raw in
            out.writeStaticString("HTTP/1.1 ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[9..<12]))
            out.writeStaticString(" ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.reasonStart..<head.reasonEnd]))
            out.writeStaticString("\r\n")
            let listed = head.connection.namesOtherFields ? namesListedInConnection(raw, head.fields) : []
            for field in head.fields {
                switch role(raw, Int(field.nameStart), Int(field.nameEnd)) {
                case .hopByHop: continue
                case .upgrade where !switching: continue
                case .upgrade, .forwardedFor, .forwarding, .endToEnd:
                    if !listed.isEmpty && isListed(raw, field, in: listed) { continue }
                }
                if !hasRequestID { hasRequestID = HTTPBytes.equalsIgnoringCase(raw, Int(field.nameStart), Int(field.nameEnd), requestIDHeader) }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(field.nameStart)..<Int(field.valueEnd)]))
                out.writeStaticString("\r\n")
            }
        }
        if !hasRequestID { writeField(&out, requestIDHeader, requestID) }
        if let setCookie { writeField(&out, "Set-Cookie", setCookie) }
        if switching {
            out.writeStaticString("Connection: upgrade\r\n")
        } else if close {
            out.writeStaticString("Connection: close\r\n")
        } else if clientMinorVersion == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        return out
    }

    static func writeField(_ out: inout ByteBuffer, _ name: String, _ value: String) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }
}
