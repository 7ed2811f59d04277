import Atomics
import FulcrumCore
import FulcrumHTTP1
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves one client connection: reads its requests (``RequestReader``), routes each one, picks a
/// node, attaches a pooled upstream connection on the same event loop, and streams both bodies
/// as received with backpressure. Answers by itself with 400/431/501/505 (malformed request),
/// 404 (no route), 502 (node unreachable), 503 (no node) and 504 (node too slow).
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let loop: LoopContext
    private var context: ChannelHandlerContext?
    private var state: ClientConnectionState = .idle
    private var readGate = ReadGate()
    private var reader = RequestReader()
    /// Received bytes not read yet: the rest of a head, or pipelined requests waiting for the
    /// current exchange to end.
    private var unread: ByteBuffer
    /// Set while ``readRequests()`` runs, so that an exchange ending inside it does not re-enter it.
    private var isReading = false
    private var batch: WriteBatch
    /// Whether this connection waits in the loop's ``EndOfTickFlushes``.
    private var flushIsQueued = false
    /// The buffer of the last head sent to a node, written into again once its exchange is over
    /// and the upstream channel has written it.
    private var lastUpstreamHead: ByteBuffer
    /// What ``unread`` and ``lastUpstreamHead`` hold when empty (see ``ByteBuffer/emptyOfItsOwn()``).
    private let noBytes = ByteBuffer.emptyOfItsOwn()
    /// The socket's peer address, as text and as a number.
    private var clientIP = "-"
    private var clientAddress = IPAddress.unspecified
    /// The client of the current request: the socket's peer, or the address a trusted proxy
    /// forwarded (`trusted_proxies`).
    private var requestClientIP = "-"
    /// Whether ``requestClientIP`` is a forwarded address rather than ``clientIP``.
    private var clientIsForwarded = false
    /// Whether the client's channel takes more writes now, kept from its writability events (see
    /// ``UpstreamHandler/isWritable``).
    private var isWritable = true
    /// When the node must have begun its response (its exchange machine's deadline), for the
    /// loop's ``ResponseTimer``.
    var responseDeadline: NIODeadline { state.exchange?.machine.responseDeadline ?? .distantFuture }
    /// This connection's place in the ``ResponseTimer``, while it is watched.
    var timerSlot: Int?
    /// When each timed period began, and which timeout ran out (see ``checkTimeouts(limits:now:)``).
    private var timeouts = ConnectionTimeouts(acceptedAt: .now())
    /// The object of the last exchange, used again for the next one when nothing else holds it.
    private var lastExchange: Exchange?
    /// Bytes that moved in a phase watched only for silence (the rest of the body of a request
    /// answered locally, read and dropped; a tunnel, both ways).
    private var watchedBytes = 0

    /// Whether the client connection is TLS (`X-Forwarded-Proto: https`).
    private let overTLS: Bool
    /// On a listener with `redirect_to_https`: the HTTPS port every request is redirected to.
    private let redirectToHTTPS: Int?

    /// Whether static files may go to the socket as file regions (`sendfile`): only where the
    /// connection's bytes reach the socket as they are (plaintext HTTP/1.1), not through TLS or
    /// an HTTP/2 stream.
    private let sendsFileRegions: Bool

    init(loop: LoopContext, overTLS: Bool = false, redirectToHTTPS: Int? = nil, sendsFileRegions: Bool = false) {
        self.loop = loop
        self.overTLS = overTLS
        self.redirectToHTTPS = redirectToHTTPS
        self.sendsFileRegions = sendsFileRegions
        self.unread = noBytes
        self.lastUpstreamHead = noBytes
        self.batch = WriteBatch(empty: noBytes)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
        if context.channel.isActive { registerConnection(context) }
    }

    /// The channel's pipeline removes its handlers when it closes. The context is let go here:
    /// it holds this handler, so keeping it would keep both, and what they hold, for ever (about
    /// 1 KB of heap for each closed connection in `ConnectionMemoryTests`).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if flushIsQueued {  // the flush list does not hold its connections (see ``EndOfTickFlushes``)
            flushIsQueued = false
            loop.endOfTickFlushes.withdraw(self)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        registerConnection(context)
        context.fireChannelActive()
    }

    private func registerConnection(_ context: ChannelHandlerContext) {
        clientIP = context.channel.remoteAddress?.ipAddress ?? "-"
        clientAddress = context.channel.remoteAddress.flatMap(IPAddress.init(socketAddress:)) ?? .unspecified
        requestClientIP = clientIP
        timeouts = ConnectionTimeouts(acceptedAt: .now())  // the first head is timed from the accept
        loop.connectionOpened(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandonExchange()
        state = .closed
        loop.connectionClosed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .tunneling(let upstream) = state {
            watchedBytes &+= bytes.readableBytes
            upstream.write(bytes)
            if !upstream.isWritable { pauseReading() }
            return
        }
        if unread.readableBytes == 0 { unread = bytes } else { unread.writeBuffer(&bytes) }
        readRequests()
    }

    /// Whether the connection takes request parts now: not while a complete request waits for
    /// its response (a pipelined request is read when the exchange ends).
    private var takesParts: Bool {
        switch state {
        case .idle, .answeredLocally: return true
        case .servingFile(let transfer): return !transfer.requestEnded
        case .readingBodyForRouting: return true
        case .acquiring(let exchange), .proxying(let exchange, _): return !exchange.machine.requestEnded
        case .tunneling, .closed: return false
        }
    }

    /// Reads parts from the unread bytes while the connection takes them.
    private func readRequests() {
        guard !isReading else { return }
        isReading = true
        defer { isReading = false }
        while takesParts {
            let part: MessagePart<RequestHead>?
            do {
                part = try reader.next(&unread)
            } catch {
                unread = noBytes
                return refuse(error)
            }
            guard let part else { break }
            handle(part)
        }
        if unread.readableBytes == 0 {
            unread = noBytes  // lets the last read buffer go
        } else if !takesParts {
            pauseReading()
        } else if case .idle = state, timeouts.headStartedAt == nil {
            timeouts.headBegan(at: .now())  // part of a head: the client_head timeout runs
        }
    }

    private func handle(_ part: MessagePart<RequestHead>) {
        switch part {
        case .head(let head):
            switch state {
            case .idle:
                start(head)
            case .closed, .tunneling:
                break
            case .acquiring, .proxying, .answeredLocally, .servingFile, .readingBodyForRouting:
                closeConnection()  // a head while a request is in progress: the reader cannot produce it
            }
        case .body(let body):
            switch state {
            case .acquiring(let exchange), .proxying(let exchange, _):
                switch exchange.machine.requestBodyReceived(body.readableBytes) {
                case .buffer:
                    exchange.buffered.append(body)
                case .forward:
                    guard case .proxying(_, let upstream) = state else { return }
                    upstream.write(body)
                    if !upstream.isWritable { pauseReading() }
                }
            case .answeredLocally:
                watchedBytes &+= body.readableBytes
            case .readingBodyForRouting(let routing):
                bodyForRoutingReceived(routing, body)
            case .closed, .tunneling, .servingFile:
                break
            case .idle:
                closeConnection()  // a body without a head: the reader cannot produce it
            }
        case .end:
            switch state {
            case .acquiring(let exchange), .proxying(let exchange, _):
                guard exchange.machine.requestEndReceived(now: .now()), case .proxying(_, let upstream) = state else { return }
                upstream.requestEnded()
                flushAtEndOfTick()
                armResponseTimeout(exchange)
            case .answeredLocally(let close):
                afterLocalResponse(close: close)
            case .servingFile(let transfer):
                transfer.requestEnded = true
            case .readingBodyForRouting(let routing):
                bodyForRoutingEnded(routing)
            case .closed, .tunneling:
                break
            case .idle:
                closeConnection()  // an end without a head: the reader cannot produce it
            }
        }
    }

    /// Not passed on: this is the connection's last handler, and the pipeline's tail ignores it.
    func channelReadComplete(context: ChannelHandlerContext) {
        flushAtEndOfTick()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        if isWritable {
            switch state {
            case .proxying(_, let upstream), .tunneling(let upstream): upstream.resumeReading()
            case .servingFile(let transfer) where transfer.waitsForWritability:
                transfer.waitsForWritability = false
                sendNextPiece(transfer)
            default: break
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeConnection()
    }

    /// Both look at the gate before the context: most calls find it as wanted, and loading the
    /// context costs a retain and a release.
    private func pauseReading() {
        if !readGate.isPaused, let context { readGate.pause(context) }
    }

    private func resumeReading() {
        if readGate.isPaused, let context { readGate.resume(context) }
    }

    /// A request with invalid or ambiguous syntax or framing: never forwarded. Answered with the
    /// error's status if no response has begun, then the connection closes.
    private func refuse(_ error: HTTPMessageError) {
        var responding = state.exchange?.machine.responseStarted ?? false
        switch state {
        case .answeredLocally, .servingFile:
            responding = true  // the request already has its answer (its body was being dropped)
        case .proxying(let exchange, let upstream):
            upstream.client = nil
            upstream.close()
            exchange.machine.abandoned()
            finish(exchange, status: error.status)
        case .acquiring(let exchange):
            exchange.machine.abandoned()
            finish(exchange, status: error.status)
        default:
            break
        }
        if !responding {
            let start = NIODeadline.now()
            let status = HTTPResponseStatus(statusCode: Int(error.status))
            let bytes = writeLocalResponse(status, head: nil, close: true, detail: error.reason)
            if state.exchange == nil { recordLocal(error.status, routed: nil, responseBytes: bytes, start: start) }
        }
        closeConnection(afterFlushing: true)
    }

    // MARK: starting an exchange

    private func start(_ head: RequestHead) {
        timeouts.requestStarted()
        let runtime = loop.runtime
        var client = clientAddress
        if clientIsForwarded {
            requestClientIP = clientIP
            clientIsForwarded = false
        }
        if let trusted = runtime.trustedProxies, trusted.contains(clientAddress) {
            var forwarded: [Substring] = []
            _ = head.anyHeader("x-forwarded-for") { forwarded.append($0); return false }
            if let (text, address) = ForwardedFor.client(forwarded, trusted: trusted) {
                client = address
                requestClientIP = String(text)
                clientIsForwarded = true
            }
        }
        let request: HeadRoutingRequest
        do throws(RequestTargetError) {
            request = try HeadRoutingRequest(head: head, clientIP: requestClientIP[...], encodedSlashes: runtime.config.encodedSlashes)
        } catch {
            return self.refuse(.malformed(error.reason))
        }
        let requestIDHeader = runtime.config.requestIDHeader
        let requestID = head.header(requestIDHeader).map { RequestID.received(String($0)) } ?? .generate(using: &loop.policy.random)
        if let port = redirectToHTTPS {
            guard let location = HTTPSRedirect.location(host: request.host, path: request.path, query: request.query, port: port) else {
                return answerLocally(.badRequest, head: head, requestID: requestID, routed: nil, detail: "no host to redirect to")
            }
            return answerLocally(.permanentRedirect, head: head, requestID: requestID, routed: nil, extraHeaders: [("Location", location)])
        }

        let now = NIODeadline.now()
        if runtime.screensBeforeRouting,
            let refusal = loop.policy.access.screenBeforeRouting(request, clientIP: requestClientIP, client: client, now: now.uptimeNanoseconds)
        {
            return answer(refusal, head: head, requestID: requestID)
        }
        let routedWithoutBody = runtime.router.route(request)
        if runtime.router.hasBodyRoutes, routedWithoutBody?.routeIndex == nil {
            // no route without a body condition takes the request: its body decides
            let candidates = runtime.router.bodyCandidates(request)
            if !candidates.isEmpty {
                return readBodyForRouting(BodyRouting(
                    request: request, requestID: requestID, client: client, runtime: runtime, candidates: candidates,
                    fallback: routedWithoutBody, limit: runtime.router.bodyLimit(candidates)))
            }
        }
        proceed(routedWithoutBody, request, runtime: runtime, requestID: requestID, client: client, now: now)
    }

    /// Carries out what routing decided: Fulcrum's own answer, or an exchange with a node.
    private func proceed(
        _ routedRequest: Routed?, _ request: HeadRoutingRequest, runtime: RuntimeConfig, requestID: RequestID, client: IPAddress, now: NIODeadline,
        bodyWasRead: Bool = false
    ) {
        let head = request.head
        let requestIDHeader = runtime.config.requestIDHeader
        let routed: RouteDecision
        switch routedRequest {
        case .service(let decision)?:
            routed = decision
        case .local(let routeIndex)?:
            if loop.policy.access.hasRules(service: nil, route: routeIndex),
                let refusal = loop.policy.access.screen(request, client: client, service: nil, routed: .local(route: routeIndex))
            {
                return answer(refusal, head: head, requestID: requestID)
            }
            return answerForRoute(routeIndex, request, requestID: requestID)
        case nil:
            return answerLocally(.notFound, head: head, requestID: requestID, routed: nil)
        }
        // CORS: a preflight is answered here; an allowed origin's response gets the policy's fields
        var corsFields: [(name: String, value: String)]? = nil
        if let cors = routed.routeIndex.map({ runtime.cors[$0] }) ?? runtime.defaultCORS {
            corsFields = []
            if let origin = head.header("origin") {
                if head.method == "OPTIONS", let asked = head.header("access-control-request-method") {
                    if let fields = cors.preflightFields(origin: origin, requestedMethod: asked, requestedHeaders: head.header("access-control-request-headers")) {
                        return answerLocally(.noContent, head: head, requestID: requestID, routed: .service(routed), extraHeaders: fields)
                    }
                    return answerLocally(
                        .forbidden, head: head, requestID: requestID, routed: .service(routed),
                        detail: "CORS preflight refused: the origin, the method or a requested header is not allowed")
                }
                if cors.allows(origin: origin) { corsFields = cors.responseFields(origin: origin) }
            }
        }
        let admitted: LoopPolicy.Admitted
        switch loop.policy.admit(request, routed: routed, clientIP: requestClientIP, client: client, now: now.uptimeNanoseconds) {
        case .proceed(let proceed):
            admitted = proceed
        case .refuse(let refusal):
            answer(refusal, head: head, requestID: requestID)
            return
        }

        // shaping: only for a route that has some (``RequestShaper``); others pass `nil` along
        let shaped = routed.routeIndex.flatMap { runtime.shapers[$0] }?.shape(request)
        var upstreamHead = lastUpstreamHead.takeForNextHead(leaving: noBytes)
        HeaderRewriter.writeUpstreamRequest(
            request, clientIP: clientIP, overTLS: overTLS, requestIDHeader: requestIDHeader, requestID: requestID, shaped: shaped,
            hostOverride: shaped == nil ? nil : routed.routeIndex.flatMap { runtime.config.routes[$0].shaping.host }, dropsExpect: bodyWasRead,
            to: &upstreamHead)
        lastUpstreamHead.keepForNextHead(upstreamHead)
        let exchange: Exchange
        if isKnownUniquelyReferenced(&lastExchange), let last = lastExchange {  // checked before a second reference is taken
            exchange = last
            exchange.begin(
                head: head, upstreamHead: upstreamHead, runtime: runtime, decision: admitted.decision, node: admitted.node,
                requestID: requestID, start: now, nodeGroup: admitted.nodeGroup, setCookie: admitted.setCookie,
                breakerAdmission: admitted.breakerAdmission, heldSlots: admitted.heldSlots)
        } else {
            exchange = Exchange(
                head: head, upstreamHead: upstreamHead, runtime: runtime, decision: admitted.decision, node: admitted.node,
                requestID: requestID, start: now, nodeGroup: admitted.nodeGroup, setCookie: admitted.setCookie,
                breakerAdmission: admitted.breakerAdmission, heldSlots: admitted.heldSlots)
            lastExchange = exchange
        }
        if let shaped, !shaped.removedResponseFields.isEmpty || !shaped.addedResponseFields.isEmpty {
            exchange.responseEdits = ResponseFieldEdits(removed: shaped.removedResponseFields, added: shaped.addedResponseFields)
        }
        if let corsFields {
            var edits = exchange.responseEdits ?? ResponseFieldEdits(removed: [], added: [])
            edits.removed += CORSPolicy.replacedResponseFields
            edits.added += corsFields
            exchange.responseEdits = edits
        }
        let delay = admitted.delay
        guard delay > 0 else { return connect(exchange) }
        // leaky bucket: the request waits its turn with its body held back
        state = .acquiring(exchange)
        pauseReading()
        loop.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
            guard case .acquiring(let current) = state, current === exchange else { return }
            connect(exchange)
        }
    }

    /// Reads the body of a request that only body routes may take, holding its parts (up to the
    /// largest `max_bytes` of the candidates; a larger body is refused with 413).
    private func readBodyForRouting(_ routing: BodyRouting) {
        state = .readingBodyForRouting(routing)
        watchedBytes = 0
        let head = routing.request.head
        if head.minorVersion == 1, let expect = head.header("expect"), expect.lowercased() == "100-continue", let context {
            // the client waits for this before sending the body the route needs
            batch.writeAndFlush(context.channel.allocator.buffer(string: "HTTP/1.1 100 Continue\r\n\r\n"), to: context, promise: nil)
        }
    }

    /// A part of a body read for routing.
    private func bodyForRoutingReceived(_ routing: BodyRouting, _ body: ByteBuffer) {
        routing.parts.append(body)
        routing.size += body.readableBytes
        watchedBytes &+= body.readableBytes
        guard routing.size > routing.limit else { return }
        answerLocally(
            .payloadTooLarge, head: routing.request.head, requestID: routing.requestID, routed: routing.fallback,
            detail: "a route decides on the body, and reads at most \(routing.limit) bytes of it")
    }

    /// The body read for routing is whole: the first body route it satisfies takes the request
    /// (else the default target, or 404), and the body's parts go on as if they had just arrived.
    private func bodyForRoutingEnded(_ routing: BodyRouting) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(routing.size)
        for part in routing.parts { bytes.append(contentsOf: part.readableBytesView) }
        if routing.request.head.framing == .chunked {
            bytes = (try? ChunkedBodyScanner.data(of: bytes)) ?? []  // the reader checked the framing already
        }
        let routed = routing.runtime.router.route(routing.candidates, body: bytes) ?? routing.fallback
        proceed(routed, routing.request, runtime: routing.runtime, requestID: routing.requestID, client: routing.client, now: .now(), bodyWasRead: true)
        for part in routing.parts { handle(.body(part)) }
        handle(.end)
    }

    /// Attaches an idle pooled connection to the exchange's node, or opens one.
    private func connect(_ exchange: Exchange) {
        let pool = loop.pool(for: exchange)
        if let idle = pool.takeIdle() {
            attach(exchange, idle, reused: true)
            return
        }
        state = .acquiring(exchange)
        pauseReading()
        let timeout = TimeAmount(exchange.runtime.config.timeouts.connect)
        pool.connect(timeout: timeout).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                guard case .acquiring(let current) = state, current === exchange else {
                    pool.release(upstream)  // the client left meanwhile
                    return
                }
                attach(exchange, upstream, reused: false)
            case .failure(let error):
                guard case .acquiring(let current) = state, current === exchange else { return }
                loop.policy.recordOutcome(exchange, status: nil, now: NIODeadline.now().uptimeNanoseconds)
                if exchange.runtime === loop.runtime { loop.statistics.countConnectError(service: exchange.decision.serviceIndex, node: exchange.node) }
                loop.logs.events.warning("cannot connect to node", metadata: [
                    "service": "\(exchange.serviceName)", "node": "\(exchange.nodeName)", "error": "\(error)",
                ])
                nodeFailed(exchange, nothingSent: true)
            }
        }
    }

    private func attach(_ exchange: Exchange, _ upstream: UpstreamHandler, reused: Bool) {
        upstream.client = self
        state = .proxying(exchange, upstream)
        upstream.expectResponse(toHEAD: exchange.head.isHEAD)
        upstream.write(exchange.upstreamHead)
        if !exchange.buffered.isEmpty { for body in exchange.buffered { upstream.write(body) } }
        flushAtEndOfTick()
        if exchange.machine.attached(reused: reused, now: .now()) {
            upstream.requestEnded()
            armResponseTimeout(exchange)
        }
        if upstream.isWritable { resumeReading() }
    }

    /// The node's connection failed (or could not be opened: `nothingSent`) before the exchange
    /// ended: the exchange machine says whether the request may go to another node (see
    /// ``ExchangeMachine/nodeFailed(nothingSent:draining:)``); the policy picks which.
    private func nodeFailed(_ exchange: Exchange, nothingSent: Bool) {
        switch exchange.machine.nodeFailed(nothingSent: nothingSent, draining: loop.isDraining) {
        case .tryAnotherNode(let orSameNode):
            let failed = exchange.node
            let now = NIODeadline.now().uptimeNanoseconds
            // another usable node if there is one; a failed pooled connection may also just have been
            // stale, so its own node is the fallback (and the only choice for a pinned route)
            let other = loop.policy.retryNode(for: exchange, clientIP: requestClientIP[...], now: now)
            if let next = other ?? (orSameNode ? failed : nil), exchange.runtime === loop.runtime || next == failed {
                exchange.machine.retrying()
                exchange.failedNode = failed
                loop.policy.move(exchange, to: next, now: now)
                connect(exchange)
                return
            }
            end(exchange, exchange.machine.cannotRetry(.badGateway, draining: loop.isDraining))
        case .end(let ending):
            end(exchange, ending)
        }
    }

    /// Ends an exchange as its machine said, once the node's connection is let go.
    private func end(_ exchange: Exchange, _ ending: ExchangeMachine.Ending) {
        switch ending {
        case .answer(let status, let close):
            state = .answeredLocally(closeAfterRequest: close)
            finish(exchange, status: status.code)
            writeLocalResponse(status, head: exchange.head, requestID: exchange.requestID, close: close)
            afterLocalResponse(close: close)
        case .closeClient(let afterFlushing):
            finish(exchange, status: exchange.machine.status)
            closeConnection(afterFlushing: afterFlushing)
        }
    }

    /// Watches for the node's answer once the request is sent (the `upstream_response` timeout).
    private func armResponseTimeout(_ exchange: Exchange) {
        guard exchange.machine.responseDeadline != nil, timerSlot == nil else { return }
        loop.responseTimer.add(self)
    }

    /// Called by the ``ResponseTimer`` when the node did not begin its response in time: 504.
    func responseTimedOut() {
        guard case .proxying(let exchange, let attached) = state, exchange.machine.responseTimedOut(now: .now()) else { return }
        cutOffNode(exchange, attached)
    }

    /// Called once a second by the loop's sweeper: asks the exchange's machine whether a side held
    /// it up (the client when it takes none of the response, its node's reads paused for it, or
    /// sends none of its request body while nothing holds it back; otherwise the node), and
    /// ``ConnectionTimeouts`` which of the connection's own timeouts ran out; carries it out.
    /// Waiting for the response head is the ``ResponseTimer``'s.
    func checkTimeouts(limits: ConnectionTimeouts.Limits, now: NIODeadline) {
        let phase: ConnectionTimeouts.Phase
        switch state {
        case .idle: phase = .waitingForRequest
        case .acquiring: phase = .exchange
        case .proxying(let exchange, let attached):
            let clientHoldsUp = attached.isReadingPaused || (!readGate.isPaused && !exchange.machine.requestEnded)
            switch exchange.machine.stall(clientHoldsUp: clientHoldsUp, clientStall: limits.clientStall, nodeStall: limits.upstreamStall, now: now) {
            case .client?: return clientStalled(exchange, attached)
            case .node?: return nodeStalled(exchange, attached)
            case nil: phase = .exchange
            }
        case .answeredLocally: phase = .droppingBody(dropped: watchedBytes)
        case .servingFile: phase = .sendingFile(sent: watchedBytes)
        case .readingBodyForRouting: phase = .readingBody(read: watchedBytes)
        case .tunneling: phase = .tunneling(relayed: watchedBytes)
        case .closed: phase = .closing
        }
        switch timeouts.verdict(phase, limits: limits, now: now) {
        case .none:
            return
        case .idleTooLong:
            closeConnection()
        case .headTooSlow:
            answerHeadTimeout(detail: "the request head did not arrive in time", waitForFlush: true)
        case .silent:
            if case .tunneling(let upstream) = state { upstream.close() }
            closeConnection()
        case .flushStalled:
            context?.close(promise: nil)
        }
    }

    private func clientStalled(_ exchange: Exchange, _ attached: UpstreamHandler) {
        loop.logs.events.warning("client stalled mid-exchange", metadata: [
            "client": "\(clientIP)", "service": "\(exchange.serviceName)", "node": "\(exchange.nodeName)",
            "timeout": "\(exchange.runtime.config.timeouts.clientStall)",
        ])
        attached.client = nil
        attached.close()
        end(exchange, exchange.machine.clientStalled())
    }

    /// Before its response began, a stalled node counts as failed (as one that did not answer in time).
    private func nodeStalled(_ exchange: Exchange, _ attached: UpstreamHandler) {
        let responding = exchange.machine.responseStarted
        if !responding { loop.policy.recordOutcome(exchange, status: nil, now: NIODeadline.now().uptimeNanoseconds) }
        loop.logs.events.warning(responding ? "node stalled mid-response" : "node stalled reading the request body", metadata: [
            "service": "\(exchange.serviceName)", "node": "\(exchange.nodeName)",
            "timeout": "\(exchange.runtime.config.timeouts.upstreamStall)",
        ])
        attached.client = nil
        attached.close()
        end(exchange, exchange.machine.nodeStalled())
    }

    /// The node did not begin its response in time: counted as its failure, answered with 504,
    /// and both connections closed (the client's may still be sending a body that has nowhere to go).
    private func cutOffNode(_ exchange: Exchange, _ attached: UpstreamHandler) {
        loop.policy.recordOutcome(exchange, status: nil, now: NIODeadline.now().uptimeNanoseconds)
        loop.logs.events.warning("node did not answer in time", metadata: [
            "service": "\(exchange.serviceName)", "node": "\(exchange.nodeName)",
            "timeout": "\(exchange.runtime.config.timeouts.upstreamResponse)",
        ])
        attached.client = nil
        attached.close()
        end(exchange, exchange.machine.cutOffNode())
    }

    // MARK: upstream events (called by the attached UpstreamHandler)

    func upstreamReceived(_ part: MessagePart<ResponseHead>, from upstream: UpstreamHandler) {
        guard case .proxying(let exchange, _) = state, let context else { return }
        switch part {
        case .head(let head):
            let action = exchange.machine.responseHeadReceived(
                status: head.status, isInterim: head.isInterim, nodeKeepsAlive: head.keepAlive,
                endsWithConnection: head.framing == .untilClose, draining: loop.isDraining)
            switch action {
            case .relayInterim:
                write(head.bytes)  // 100 Continue, 103 Early Hints: passed on as they are
            case .dropInterim:
                break
            case .refuseSwitch:
                // a protocol switch nobody asked for: the node's connection cannot be trusted
                upstreamFailed(upstream, error: HTTPMessageError.malformed("101 to a request that did not ask for an upgrade"))
                upstream.close()
            case .relay(let closeClient), .relayAndTunnel(let closeClient):
                loop.responseTimer.remove(self)
                loop.policy.recordOutcome(exchange, status: head.status, now: NIODeadline.now().uptimeNanoseconds)
                batch.writeHead(to: context) { out in
                    HeaderRewriter.writeClientResponse(
                        head, requestIDHeader: exchange.runtime.config.requestIDHeader, requestID: exchange.requestID,
                        setCookie: exchange.setCookie, edits: exchange.responseEdits, close: closeClient,
                        clientMinorVersion: exchange.head.minorVersion, to: &out)
                }
                if case .relayAndTunnel = action {
                    finish(exchange, status: 101)
                    startTunnel(upstream)
                }
            }
        case .body(let body):
            exchange.machine.responseBodyReceived(body.readableBytes)
            batch.write(body, to: context)
            if !isWritable { upstream.pauseReading() }
        case .end:
            let now = NIODeadline.now()  // one clock reading for the pool, the statistics and idleness
            upstream.client = nil
            let end = exchange.machine.responseEndReceived(draining: loop.isDraining)
            if end.nodeConnectionReusable {
                upstream.pool.release(upstream, now: now)  // closed there unless reusable
            } else {
                upstream.close()
            }
            finish(exchange, status: exchange.machine.status, now: now)
            switch end.client {
            case .lingerThenClose:
                lingerAfterEarlyResponse(now: now)
            case .close:
                closeConnection(afterFlushing: true)
            case .idle:
                flushAtEndOfTick()  // the upstream is detached, so its read-complete will not queue it
                becomeIdle(now: now)
            }
        }
    }

    /// The node answered before the whole request body arrived (a 401 or 413 to an upload):
    /// closing at once would leave the client's bytes unread, and the kernel answers a close with
    /// unread bytes with a reset, which makes clients such as curl fail the transfer and lose the
    /// response. Like nginx's lingering close, the rest of the body is read and dropped, and the
    /// connection closes once it ended, or when it stops for `client_stall`, or after
    /// the lingering time (``ConnectionTimeouts/Limits/lingering``) at most.
    private func lingerAfterEarlyResponse(now: NIODeadline) {
        state = .answeredLocally(closeAfterRequest: true)
        timeouts.lingers(since: now)
        flushAtEndOfTick()
        resumeReading()
        readRequests()
    }

    /// Bytes from the node after a protocol switch.
    func tunnelReceived(_ bytes: ByteBuffer) {
        guard case .tunneling(let upstream) = state else { return }
        watchedBytes &+= bytes.readableBytes
        write(bytes)
        if !isWritable { upstream.pauseReading() }
    }

    func upstreamReadComplete() {
        flushAtEndOfTick()
    }

    /// Has what this connection queued, for its client and for its node, flushed once the loop
    /// has handled its current batch of events (see ``EndOfTickFlushes``).
    /// Only while the pipeline holds this handler (`context` is set): the list does not.
    private func flushAtEndOfTick() {
        guard !flushIsQueued, context != nil else { return }
        flushIsQueued = true
        loop.endOfTickFlushes.enqueue(self)
    }

    /// Flushes what was queued for the client and for the node; called by ``EndOfTickFlushes``.
    func flushQueuedWrites() {
        flushIsQueued = false
        switch state {
        case .proxying(_, let upstream), .tunneling(let upstream): upstream.flush()
        default: break
        }
        flush()
    }

    /// Queues bytes for the client; ``flush()`` sends them.
    private func write(_ bytes: ByteBuffer) {
        if let context { batch.write(bytes, to: context) }
    }

    /// Sends what ``write(_:)`` queued, if anything.
    private func flush() {
        if let context { batch.flush(context) }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReading() }
    }

    func upstreamClosed(_ upstream: UpstreamHandler) {
        if case .tunneling(let partner) = state, partner === upstream { return closeConnection(afterFlushing: true) }
        upstreamFailed(upstream, error: ChannelError.eof)
    }

    func upstreamFailed(_ upstream: UpstreamHandler, error: Error) {
        guard case .proxying(let exchange, let attached) = state, attached === upstream else { return }
        upstream.client = nil
        loop.responseTimer.remove(self)
        if !exchange.machine.responseStarted {
            loop.policy.recordOutcome(exchange, status: nil, now: NIODeadline.now().uptimeNanoseconds)
            loop.logs.events.warning("node failed before answering", metadata: [
                "service": "\(exchange.serviceName)", "node": "\(exchange.nodeName)", "error": "\(error)",
            ])
        }
        nodeFailed(exchange, nothingSent: false)
    }

    // MARK: finishing

    /// Ends an exchange: gives back its in-flight slots, breaker admission and balancer count,
    /// records its statistics and logs it. Once per exchange, whichever path ends it first.
    private func finish(_ exchange: Exchange, status: UInt, now: NIODeadline = .now()) {
        guard !exchange.isFinished else { return }
        exchange.isFinished = true
        loop.responseTimer.remove(self)
        loop.policy.finished(exchange, status: status, now: now.uptimeNanoseconds)
        if exchange.runtime === loop.runtime {
            loop.statistics.record(
                route: exchange.decision.routeIndex ?? loop.statistics.defaultRoute, service: exchange.decision.serviceIndex,
                node: exchange.node, status: status, latencyNanoseconds: (now - exchange.start).nanoseconds,
                requestBytes: exchange.machine.requestBytes, responseBytes: exchange.machine.responseBytes, now: now.uptimeNanoseconds)
        }
        guard exchange.runtime.config.accessLog else { return }
        loop.logs.logAccess(
            clientIP: requestClientIP, head: exchange.head, status: status, bytes: exchange.machine.responseBytes, start: exchange.start,
            route: exchange.routeName, node: exchange.nodeName, requestID: exchange.requestID.text,
            retriedFrom: exchange.failedNode.map { exchange.runtime.config.services[exchange.decision.serviceIndex].nodes[$0].name })
    }

    /// Answers with what the policy refused a request with (an access rule, CC, a limit, a breaker).
    private func answer(_ refusal: LoopPolicy.Refusal, head: RequestHead, requestID: RequestID) {
        answerLocally(
            refusal.status, head: head, requestID: requestID, routed: refusal.routed, detail: refusal.detail,
            page: refusal.body.map { ErrorPage(body: $0) }, extraHeaders: refusal.extraHeaders)
    }

    /// Answers a request for a route that answers itself (`redirect`, `respond`), with the
    /// route's response fields.
    private func answerForRoute(_ routeIndex: Int, _ request: HeadRoutingRequest, requestID: RequestID) {
        let runtime = loop.runtime
        let route = runtime.config.routes[routeIndex]
        let shaped = runtime.shapers[routeIndex]?.shape(request)
        var fields = shaped?.addedResponseFields.map { ($0.name, $0.value) } ?? []
        switch route.action {
        case .redirect(let redirect):
            let path = shaped?.path.map { $0[...] } ?? request.path
            let location = redirect.to.rendered(request, path: path, captures: shaped?.captures ?? [])
            fields.insert(("Location", location), at: 0)
            answerLocally(
                HTTPResponseStatus(statusCode: redirect.status), head: request.head, requestID: requestID, routed: .local(route: routeIndex),
                extraHeaders: fields)
        case .respond(let response):
            answerLocally(
                HTTPResponseStatus(statusCode: response.status), head: request.head, requestID: requestID, routed: .local(route: routeIndex),
                page: ErrorPage(contentType: response.contentType, body: response.body), extraHeaders: fields)
        case .serveFiles(let files):
            serveFile(routeIndex, files, request, path: shaped?.path.map { $0[...] } ?? request.path, requestID: requestID, extraFields: fields)
        case .proxy:
            preconditionFailure("the router answers .local only for routes that answer themselves")
        }
    }

    /// Answers with Fulcrum's own response; `routed` is what the router made of the request,
    /// `nil` when no route matched.
    private func answerLocally(
        _ status: HTTPResponseStatus, head: RequestHead, requestID: RequestID, routed: Routed?, detail: String? = nil,
        page: ErrorPage? = nil, extraHeaders: [(String, String)] = []
    ) {
        let start = NIODeadline.now()
        let close = !head.keepAlive || loop.isDraining
        state = .answeredLocally(closeAfterRequest: close)
        let bytes = writeLocalResponse(
            status, head: head, requestID: requestID, close: close, detail: detail, page: page, extraHeaders: extraHeaders)
        recordLocal(status.code, routed: routed, responseBytes: bytes, start: start)
        guard loop.runtime.config.accessLog else { return }
        loop.logs.logAccess(
            clientIP: requestClientIP, head: head, status: status.code, bytes: bytes, start: start,
            route: routed.map { loop.runtime.router.routeName($0.routeIndex) } ?? "-", node: "-", requestID: requestID.text)
    }

    /// Counts a response Fulcrum made itself in the traffic statistics.
    private func recordLocal(_ status: UInt, routed: Routed?, responseBytes: Int, start: NIODeadline) {
        let now = NIODeadline.now()
        loop.statistics.record(
            route: routed.map { $0.routeIndex ?? loop.statistics.defaultRoute } ?? loop.statistics.unmatchedRoute,
            service: routed?.decision?.serviceIndex, node: nil, status: status, latencyNanoseconds: (now - start).nanoseconds,
            requestBytes: 0, responseBytes: responseBytes, now: now.uptimeNanoseconds)
    }

    /// After a locally generated response to a request whose end was already received.
    private func afterLocalResponse(close: Bool) {
        if close { closeConnection(afterFlushing: true) } else { becomeIdle() }
    }

    /// Writes a response Fulcrum makes itself (error page, or a rate limit's body); returns the
    /// body's length.
    @discardableResult
    private func writeLocalResponse(
        _ status: HTTPResponseStatus, head: RequestHead?, requestID: RequestID? = nil, close: Bool, detail: String? = nil,
        page: ErrorPage? = nil, extraHeaders: [(String, String)] = []
    ) -> Int {
        let page = page ?? loop.runtime.errorPage(for: status, detail: detail)
        let length = page.body.utf8.count
        let sendsBody = head?.isHEAD != true && status.code != 204
        var fields = extraHeaders
        if status.code != 204 {  // a 204 has no body, and says nothing of one (RFC 9110 §8.6)
            fields.append(("Content-Type", page.contentType))
            fields.append(("Content-Length", String(length)))
        }
        writeOwnResponse(status, fields: fields, head: head, requestID: requestID, close: close, body: sendsBody ? page.body : nil)
        return sendsBody ? length : 0
    }

    /// Writes and flushes the head of a response Fulcrum makes itself, with `fields`, the request
    /// ID and the `Connection` field, and `body` when there is one.
    private func writeOwnResponse(
        _ status: HTTPResponseStatus, fields: [(String, String)], head: RequestHead?, requestID: RequestID?, close: Bool, body: String?
    ) {
        guard let context else { return }
        let statusLine = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        var fields = fields
        if let requestID { fields.append((loop.runtime.config.requestIDHeader, requestID.text)) }
        // the fields, the Connection field (at most 24 bytes), the empty line and the body
        let maximumLength = statusLine.utf8.count + fields.reduce(0) { $0 + HeadWriter.fieldLength($1.0, $1.1) } + 26 + (body?.utf8.count ?? 0)
        var out = context.channel.allocator.buffer(capacity: maximumLength)
        out.writeHead(maximumLength: maximumLength) { out in
            out.append(statusLine)
            for (name, value) in fields { out.appendField(name, value) }
            if close {
                out.append("Connection: close\r\n")
            } else if head?.minorVersion == 0 {
                out.append("Connection: keep-alive\r\n")
            }
            out.append("\r\n")
            if let body { out.append(body) }
        }
        batch.writeAndFlush(out, to: context, promise: nil)
    }

    // MARK: static files

    /// Serves the file a static route's request names: looked up and opened on the thread pool,
    /// then sent a piece at a time, each read once the client's channel took the last (a slow
    /// client holds the reads back rather than the file filling memory).
    private func serveFile(
        _ routeIndex: Int, _ files: StaticFiles, _ request: HeadRoutingRequest, path: Substring, requestID: RequestID,
        extraFields: [(String, String)]
    ) {
        let head = request.head
        let routed = Routed.local(route: routeIndex)
        guard head.method == "GET" || head.isHEAD else {
            return answerLocally(.methodNotAllowed, head: head, requestID: requestID, routed: routed, extraHeaders: [("Allow", "GET, HEAD")])
        }
        let relative: String
        switch StaticFiles.relativePath(path) {
        case .success(let path): relative = path
        case .failure(let refusal): return answerLocally(.badRequest, head: head, requestID: requestID, routed: routed, detail: refusal.reason)
        }
        guard let root = loop.runtime.staticRoots[routeIndex], let context else {
            return answerLocally(.notFound, head: head, requestID: requestID, routed: routed)
        }
        let transfer = FileTransfer(
            head: head, requestID: requestID, routeIndex: routeIndex, start: .now(), close: !head.keepAlive || loop.isDraining,
            extraFields: extraFields)
        state = .servingFile(transfer)
        watchedBytes = 0
        let endsWithSlash = path.last == "/"
        let index = files.index
        let directoryLocation = String(request.path) + "/" + (request.query.isEmpty ? "" : "?" + request.query)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
            FileServing.open(root: root, relative: relative, requestEndsWithSlash: endsWithSlash, index: index)
        }.assumeIsolated().whenComplete { [self] result in
            guard case .servingFile(let current) = state, current === transfer else { return }
            switch result {
            case .success(.found(let found)): startFile(transfer, found)
            case .success(.notFound): answerFileRequest(transfer, .notFound)
            case .success(.outsideRoot): answerFileRequest(transfer, .forbidden, detail: "the path leads outside the served directory")
            case .success(.directoryWithoutSlash): answerFileRequest(transfer, .movedPermanently, fields: [("Location", directoryLocation)])
            case .failure(let error): answerFileRequest(transfer, .internalServerError, detail: "cannot read the file: \(error)")
            }
        }
    }

    /// Answers a static route's request without a file body.
    private func answerFileRequest(_ transfer: FileTransfer, _ status: HTTPResponseStatus, detail: String? = nil, fields: [(String, String)] = []) {
        answerLocally(
            status, head: transfer.head, requestID: transfer.requestID, routed: .local(route: transfer.routeIndex), detail: detail,
            extraHeaders: transfer.extraFields + fields)
        if transfer.requestEnded, case .answeredLocally(let close) = state { afterLocalResponse(close: close) }
    }

    /// Writes the head for a found file (200, 206, 304 or 416) and starts sending its bytes.
    private func startFile(_ transfer: FileTransfer, _ found: FileServing.Found) {
        let head = transfer.head
        let tag = StaticFiles.entityTag(size: found.size, modified: found.modified)
        var fields = transfer.extraFields + [("Last-Modified", HTTPDate.format(found.modified)), ("ETag", tag)]
        let status: HTTPResponseStatus
        if StaticFiles.notModified(ifNoneMatch: head.header("if-none-match"), ifModifiedSince: head.header("if-modified-since"), tag: tag, modified: found.modified) {
            status = .notModified
        } else {
            var range = StaticFiles.range(head.header("range"), size: found.size)
            if let ifRange = head.header("if-range"), ifRange != tag[...] { range = .whole }  // changed since: all of it
            fields += [("Content-Type", StaticFiles.mediaType(of: found.path)), ("Accept-Ranges", "bytes")]
            switch range {
            case .whole:
                status = .ok
                transfer.remaining = found.size
            case .part(let bytes):
                status = .partialContent
                transfer.offset = bytes.lowerBound
                transfer.remaining = bytes.upperBound - bytes.lowerBound + 1
                fields.append(("Content-Range", "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(found.size)"))
            case .unsatisfiable:
                status = .rangeNotSatisfiable
                fields.append(("Content-Range", "bytes */\(found.size)"))
            }
            fields.append(("Content-Length", String(transfer.remaining)))
        }
        transfer.status = status.code
        writeOwnResponse(status, fields: fields, head: head, requestID: transfer.requestID, close: transfer.close, body: nil)
        if head.isHEAD { transfer.remaining = 0 }
        guard transfer.remaining > 0 else { return finishFile(transfer) }
        transfer.file = found.file
        if sendsFileRegions { sendNextRegion(transfer) } else { sendNextPiece(transfer) }
    }

    /// Has the kernel send the next region of the file (`sendfile`), once the last one went.
    /// The region's handle is a duplicate of the file's descriptor, closed when its write ends
    /// however it ends, so a client that leaves mid-file leaks nothing.
    private func sendNextRegion(_ transfer: FileTransfer) {
        guard let file = transfer.file, let context else { return }
        let count = min(transfer.remaining, Int64(FileTransfer.regionBytes))
        let descriptor = dup(file.descriptor)
        guard descriptor >= 0 else { return closeConnection(afterFlushing: true) }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(transfer.offset), endIndex: Int(transfer.offset + count))
        flush()  // the head goes first
        context.writeAndFlush(NIOAny(IOData.fileRegion(region))).assumeIsolated().whenComplete { [self] result in
            try? handle.close()
            guard case .servingFile(let current) = state, current === transfer else { return }
            guard case .success = result else { return closeConnection() }
            transfer.offset += count
            transfer.remaining -= count
            transfer.sent += Int(count)
            watchedBytes &+= Int(count)
            if transfer.remaining == 0 { finishFile(transfer) } else { sendNextRegion(transfer) }
        }
    }

    /// Reads the next piece of the file on the thread pool and sends it.
    private func sendNextPiece(_ transfer: FileTransfer) {
        guard let file = transfer.file, let context else { return }
        let count = Int(min(transfer.remaining, Int64(FileTransfer.pieceBytes)))
        let offset = transfer.offset
        let buffer = context.channel.allocator.buffer(capacity: count)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () throws -> ByteBuffer in
            var buffer = buffer
            _ = try FileServing.read(file, offset: offset, count: count, into: &buffer)
            return buffer
        }.assumeIsolated().whenComplete { [self] result in
            guard case .servingFile(let current) = state, current === transfer else { return }
            guard case .success(let piece) = result, piece.readableBytes > 0 else {
                // the head promised more bytes than the file now has (or a read failed): only closing can tell the client
                loop.logs.events.warning("static file read failed mid-response", metadata: ["route": "\(loop.runtime.router.routeName(transfer.routeIndex))"])
                return closeConnection(afterFlushing: true)
            }
            let read = piece.readableBytes
            transfer.offset += Int64(read)
            transfer.remaining -= Int64(read)
            transfer.sent += read
            watchedBytes &+= read
            write(piece)
            flush()
            if transfer.remaining == 0 {
                finishFile(transfer)
            } else if isWritable {
                sendNextPiece(transfer)
            } else {
                transfer.waitsForWritability = true
            }
        }
    }

    /// The file's response is complete: counted, logged, and the connection moves on.
    private func finishFile(_ transfer: FileTransfer) {
        transfer.file = nil
        recordLocal(transfer.status, routed: .local(route: transfer.routeIndex), responseBytes: transfer.sent, start: transfer.start)
        if loop.runtime.config.accessLog {
            loop.logs.logAccess(
                clientIP: requestClientIP, head: transfer.head, status: transfer.status, bytes: transfer.sent, start: transfer.start,
                route: loop.runtime.router.routeName(transfer.routeIndex), node: "-", requestID: transfer.requestID.text)
        }
        if transfer.requestEnded {
            afterLocalResponse(close: transfer.close)
        } else {
            state = .answeredLocally(closeAfterRequest: transfer.close)  // the rest of the request is read and dropped
        }
    }

    /// Ready for the next request: reads a pipelined one that was held back.
    private func becomeIdle(now: NIODeadline = .now()) {
        state = .idle
        var head = lastExchange?.letGoOfBuffers(empty: noBytes)
        reader.recycle(&head, empty: noBytes)
        timeouts.becameIdle(at: now)
        if loop.isDraining, unread.readableBytes == 0 {
            closeConnection()
            return
        }
        readRequests()
        if readGate.isPaused, takesParts { resumeReading() }
    }

    /// Ends the exchange in progress, if any, because the client connection ends in its middle
    /// (the client left, a read failed, a drain ran out): the node's connection, in an unknown
    /// state, closes, and the exchange gives back what it took (see ``finish(_:status:now:)``).
    /// Every way a connection ends comes through here, so none of them can keep an in-flight slot.
    private func abandonExchange() {
        switch state {
        case .proxying(let exchange, let upstream):
            if upstream.client === self {
                upstream.client = nil
                upstream.close()
            }
            exchange.machine.abandoned()
            finish(exchange, status: exchange.machine.statusWhenAbandoned)
        case .acquiring(let exchange):
            exchange.machine.abandoned()
            finish(exchange, status: exchange.machine.statusWhenAbandoned)
        case .tunneling(let upstream):
            upstream.close()
        case .servingFile(let transfer):
            transfer.file = nil  // closed once a read in flight lets go of it too
        case .idle, .answeredLocally, .readingBodyForRouting, .closed:
            break
        }
    }

    /// Closes the client connection, after everything written so far has reached the socket when
    /// `afterFlushing` is set (closing at once would drop queued response bytes).
    private func closeConnection(afterFlushing: Bool = false) {
        abandonExchange()
        state = .closed
        guard let context else { return }
        if afterFlushing {
            timeouts.closesAfterFlush(at: .now())
            let promise = context.eventLoop.makePromise(of: Void.self)
            batch.writeAndFlush(ByteBuffer(), to: context, promise: promise)
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    /// Closes the connection now if it is between requests; otherwise after the current exchange.
    func closeIfIdle() {
        if case .idle = state { closeConnection() }
    }

    /// Closes the connection with 408 if it was accepted before `openedBefore` and has not sent a
    /// whole request head yet (the connection cap's shedding, see ``LoopContext``). It does not
    /// wait for the 408 to be flushed: a client that reads nothing must not keep the place.
    /// Returns whether it closed.
    func closeIfStillInFirstHead(openedBefore: NIODeadline) -> Bool {
        guard case .idle = state, timeouts.isStillInFirstHead(openedBefore: openedBefore) else { return false }
        answerHeadTimeout(detail: "the server is at its connection limit and the request head did not arrive in time", waitForFlush: false)
        return true
    }

    private func answerHeadTimeout(detail: String, waitForFlush: Bool) {
        let start = NIODeadline.now()
        let bytes = writeLocalResponse(.requestTimeout, head: nil, close: true, detail: detail)
        recordLocal(408, routed: nil, responseBytes: bytes, start: start)
        closeConnection(afterFlushing: waitForFlush)
    }

    /// Closes the connection whatever it is doing (end of a drain).
    func closeNow() {
        closeConnection()
    }

    // MARK: upgrade

    /// After a 101 response: bytes are relayed as they are in both directions, with the same
    /// backpressure as bodies. Bytes the client sent after its request go first.
    private func startTunnel(_ upstream: UpstreamHandler) {
        state = .tunneling(upstream)
        upstream.isTunnel = true
        flush()
        if unread.readableBytes > 0 {
            upstream.write(unread)
            upstream.flush()
            unread = noBytes
        }
        resumeReading()
    }
}
