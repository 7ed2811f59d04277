import FulcrumHTTP1
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Presents one HTTP/2 stream to a ``ProxyHandler`` as an HTTP/1.1 connection that carries one
/// request: the stream's request is written out as HTTP/1.1 bytes for the handler to read, and
/// the HTTP/1.1 response the handler writes is read back into HEADERS and DATA frames. So a
/// stream is routed, split, limited, balanced, counted and logged by the same code as an
/// HTTP/1.1 request, and its request goes through the same reader, which refuses what it refuses
/// on HTTP/1.1.
///
/// RFC 9113 §8.2.2 forbids the connection-specific fields (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`) in HTTP/2; swift-nio-http2 refuses a
/// request that has one, and they are left out of the response. Field values with CR, LF or NUL,
/// which would add lines to the HTTP/1.1 text, are refused by swift-nio-http2's validation before
/// they get here, and checked again here. `:authority` becomes `Host`; split `cookie` fields are
/// joined (§8.2.3). A request body without `content-length` is sent chunked. Trailers are dropped.
///
/// Backpressure: the stream channel is writable while the stream's flow-control window and
/// buffer allow, and the proxy handler pauses the node's reads when it is not, as it does for a
/// slow HTTP/1.1 client.
final class HTTP2StreamAsHTTP1: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// Whether the request's body is sent chunked (it has no `content-length`).
    private var chunkedRequestBody = false
    private var requestHeadSent = false
    private var requestEnded = false
    private var response = MessageReader<ResponseHead>()
    private var unreadResponse = ByteBuffer()
    private var responseHeadSent = false
    private var responseEnded = false

    /// Set while the proxy handler's write or flush passes through: a stream channel may deliver
    /// the frames it holds from within a flush, and the proxy handler must not be called into
    /// while it is in the middle of writing (it is not reentrant, as a socket channel never
    /// reads from within a write). Frames that arrive then wait in ``heldFrames``.
    private var isWriting = false
    private var heldFrames: [HTTP2Frame.FramePayload] = []

    // MARK: the request, HTTP/2 to HTTP/1.1

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if isWriting {
            heldFrames.append(frame)
            return
        }
        read(frame, context: context)
    }

    func flush(context: ChannelHandlerContext) {
        writing(context) { context.flush() }
    }

    /// Runs `body` (a write or flush passed on) and then hands on the frames that arrived meanwhile.
    private func writing(_ context: ChannelHandlerContext, _ body: () -> Void) {
        guard !isWriting else { return body() }
        isWriting = true
        body()
        isWriting = false
        while !heldFrames.isEmpty, !isWriting {
            read(heldFrames.removeFirst(), context: context)
        }
    }

    private func read(_ frame: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        switch frame {
        case .headers(let headers):
            if !requestHeadSent {
                guard let head = requestHead(headers.headers, endStream: headers.endStream, allocator: context.channel.allocator) else {
                    // what swift-nio-http2's validation let through but HTTP/1.1 cannot carry
                    context.close(promise: nil)
                    return
                }
                requestHeadSent = true
                context.fireChannelRead(wrapInboundOut(head))
                if headers.endStream { requestEnded = true }
            } else if headers.endStream {
                endRequest(context)  // trailers: dropped
            }
        case .data(let data):
            guard requestHeadSent, !requestEnded, case .byteBuffer(let bytes) = data.data else { return }
            if chunkedRequestBody, bytes.readableBytes > 0 {
                var chunk = context.channel.allocator.buffer(capacity: bytes.readableBytes + 12)
                chunk.writeString(String(bytes.readableBytes, radix: 16))
                chunk.writeStaticString("\r\n")
                chunk.writeImmutableBuffer(bytes)
                chunk.writeStaticString("\r\n")
                context.fireChannelRead(wrapInboundOut(chunk))
            } else if bytes.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(bytes))
            }
            if data.endStream { endRequest(context) }
        default:
            break
        }
    }

    private func endRequest(_ context: ChannelHandlerContext) {
        guard !requestEnded else { return }
        requestEnded = true
        if chunkedRequestBody { context.fireChannelRead(wrapInboundOut(ByteBuffer(string: "0\r\n\r\n"))) }
    }

    /// The HTTP/1.1 request head for `headers`, or `nil` when it cannot be written as one.
    private func requestHead(_ headers: HPACKHeaders, endStream: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var method: String?
        var path: String?
        var authority: String?
        var hasContentLength = false
        var cookies: [String] = []
        for (name, value, _) in headers {
            guard Self.canBeWritten(value) else { return nil }
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case "content-length": hasContentLength = true
            case "cookie": cookies.append(value)
            default: break
            }
        }
        guard let method, let target = path ?? (method == "CONNECT" ? authority : nil) else { return nil }
        if method == "HEAD" { response.awaitsResponseToHEAD = true }
        chunkedRequestBody = !endStream && !hasContentLength
        var out = allocator.buffer(capacity: 512)
        out.writeString(method)
        out.writeStaticString(" ")
        out.writeString(target)
        out.writeStaticString(" HTTP/1.1\r\n")
        if let authority {
            out.writeStaticString("host: ")
            out.writeString(authority)
            out.writeStaticString("\r\n")
        }
        for (name, value, _) in headers {
            if name.hasPrefix(":") || name == "cookie" || name == "te" || (name == "host" && authority != nil) { continue }
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        if !cookies.isEmpty {
            out.writeStaticString("cookie: ")
            out.writeString(cookies.joined(separator: "; "))
            out.writeStaticString("\r\n")
        }
        if chunkedRequestBody { out.writeStaticString("transfer-encoding: chunked\r\n") }
        out.writeStaticString("\r\n")
        return out
    }

    /// Whether `value` can be written into an HTTP/1.1 head without changing its lines.
    private static func canBeWritten(_ value: String) -> Bool {
        !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    // MARK: the response, HTTP/1.1 to HTTP/2

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        if unreadResponse.readableBytes == 0 { unreadResponse = bytes } else { unreadResponse.writeBuffer(&bytes) }
        writing(context) {
            // the last frame made is written when the next one is known: a response's end joins its
            // head when nothing came between (HEADERS with END_STREAM rather than an empty DATA)
            var pending: HTTP2Frame.FramePayload?
            var pendingIsFinalHead = false
            func make(_ frame: HTTP2Frame.FramePayload, finalHead: Bool = false) {
                if let pending { context.write(wrapOutboundOut(pending), promise: nil) }
                pending = frame
                pendingIsFinalHead = finalHead
            }
            do {
                while !responseEnded, let part = try response.next(&unreadResponse) {
                    switch part {
                    case .head(let head):
                        make(.headers(.init(headers: Self.responseHeaders(head))), finalHead: !head.isInterim)
                        if !head.isInterim { responseHeadSent = true }
                    case .body(let body):
                        make(.data(.init(data: .byteBuffer(body))))
                    case .end:
                        responseEnded = true
                        if pendingIsFinalHead, case .headers(var headers) = pending {
                            headers.endStream = true
                            pending = .headers(headers)
                        } else {
                            make(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
                        }
                    }
                }
            } catch {
                // the handler writes what it read or made itself: a response it cannot be read from
                // ends the stream rather than reaching the client garbled
                promise?.fail(error)
                context.close(promise: nil)
                return
            }
            if unreadResponse.readableBytes == 0 { unreadResponse = ByteBuffer() }
            if let pending { context.write(wrapOutboundOut(pending), promise: promise) } else { promise?.succeed() }
        }
    }

    /// The proxy handler closes its "connection" after a response that ends when the node
    /// closes (no length, not chunked): the stream ends normally then. Closing in the middle of
    /// any other response resets the stream, which tells the client it is incomplete.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if responseHeadSent, !responseEnded, response.endsAtClose {
            responseEnded = true
            context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    /// The response head's fields as HTTP/2 fields: `:status` first, names in lower case, the
    /// connection-specific fields left out. The fields are sent without indexing (their names
    /// still come from HPACK's static table), as nginx sends its responses: an indexed field is
    /// looked for in the connection's dynamic table, field by field and byte by byte, which cost
    /// about a tenth of the CPU time of an HTTP/2 load (bench/RESULTS.md), while responses from
    /// different nodes repeat few fields whole. `:status` is indexed: the common ones are whole
    /// entries of the static table.
    private static func responseHeaders(_ head: ResponseHead) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(head.fields.count + 1)
        headers.add(name: ":status", value: String(head.status))
        for field in head.fields {
            guard let name = head.bytes.getString(at: head.bytes.readerIndex + Int(field.nameStart), length: Int(field.nameEnd - field.nameStart)),
                let value = head.bytes.getString(at: head.bytes.readerIndex + Int(field.valueStart), length: Int(field.valueEnd - field.valueStart))
            else { continue }
            let lowercased = name.lowercased()
            switch lowercased {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade": continue
            default: headers.add(name: lowercased, value: value, indexing: .nonIndexable)
            }
        }
        return headers
    }
}
