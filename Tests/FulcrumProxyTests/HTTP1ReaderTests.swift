import Foundation
import FulcrumHTTP1
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import FulcrumProxy

/// The HTTP/1.1 reader of the data plane: heads, framing, chunked bodies, and a differential fuzz
/// against NIOHTTP1's llhttp-based decoder.
@Suite struct HTTP1ReaderTests {
    /// A request as read: method, target, and the body with chunk framing removed.
    struct ReadRequest: Equatable, CustomStringConvertible {
        var method: String
        var target: String
        var body: [UInt8]
        var description: String { "\(method) \(target) body=\(String(decoding: body, as: UTF8.self).debugDescription)" }
    }

    /// Reads the messages in `input`, delivered in pieces cut at `cuts`, as a connection does:
    /// interim (1xx) heads are skipped, a message without framing ends with the input, and reading
    /// stops after a message that does not keep the connection or at a head `stopsAt` (a 101).
    /// Returns each complete message made into a record (body without chunk framing) and the error
    /// that stopped the reader, if any.
    static func readAll<Head: HTTPHead, Record>(
        _ input: [UInt8], cuts: [Int], keepsConnection: (Head) -> Bool, stopsAt: (Head) -> Bool = { _ in false },
        record: (Head, [UInt8]) -> Record
    ) -> (records: [Record], error: HTTPMessageError?) {
        var reader = MessageReader<Head>()
        var unread = ByteBuffer()
        var records: [Record] = []
        var current: (Head, [UInt8])?
        /// Records the current message; false when the connection ends with it.
        func complete() -> Bool {
            guard let (head, raw) = current else { return true }
            records.append(record(head, head.framing == .chunked ? dechunk(raw) : raw))
            current = nil
            return keepsConnection(head)
        }
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < input.count }).sorted() + [input.count] {
            unread.writeBytes(input[start..<end])
            start = end
            do {
                while let part = try reader.next(&unread) {
                    switch part {
                    case .head(let head) where stopsAt(head): return (records, nil)
                    case .head(let head) where head.isInterim: continue
                    case .head(let head): current = (head, [])
                    case .body(let bytes): current?.1 += Array(buffer: bytes)
                    case .end: if !complete() { return (records, nil) }
                    }
                }
            } catch {
                return (records, error)
            }
        }
        if reader.endsAtClose { _ = complete() }
        return (records, nil)
    }

    static func read(_ input: [UInt8], cuts: [Int] = []) -> (records: [ReadRequest], error: HTTPMessageError?) {
        readAll(input, cuts: cuts, keepsConnection: { (head: RequestHead) in head.keepAlive }) { head, body in
            ReadRequest(method: head.method, target: String(head.target), body: body)
        }
    }

    /// The payload of a chunked body the reader accepted.
    static func dechunk(_ raw: [UInt8]) -> [UInt8] {
        var payload: [UInt8] = []
        var index = 0
        while true {
            var size = 0
            while let digit = raw[index] == UInt8(ascii: ";") || raw[index] == UInt8(ascii: "\r") ? nil : Int(String(UnicodeScalar(raw[index])), radix: 16) {
                size = size * 16 + digit
                index += 1
            }
            while raw[index] != UInt8(ascii: "\n") { index += 1 }
            index += 1
            if size == 0 { return payload }
            payload += raw[index..<index + size]
            index += size + 2
        }
    }

    /// What NIOHTTP1 (llhttp) reads from the same bytes.
    static func readWithNIO(_ input: [UInt8]) -> [ReadRequest] {
        final class Collector: ChannelInboundHandler {
            typealias InboundIn = HTTPServerRequestPart
            var records: [ReadRequest] = []
            var current: ReadRequest?
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                switch unwrapInboundIn(data) {
                case .head(let head): current = ReadRequest(method: head.method.rawValue, target: head.uri, body: [])
                case .body(let bytes): current?.body += Array(buffer: bytes)
                case .end:
                    if let current { records.append(current) }
                    current = nil
                }
            }
        }
        let collector = Collector()
        let channel = EmbeddedChannel()
        try? channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), collector)
        _ = try? channel.writeInbound(ByteBuffer(bytes: input))
        _ = try? channel.finish()
        return collector.records
    }

    @Test func headsAreParsedInPlace() throws {
        let text = "POST /shop/cart?item=7&x HTTP/1.1\r\nHost: shop.example:8080\r\nX-Tenant:  acme \r\nCookie: a=1\r\nContent-Length: 4\r\n\r\n"
        let head = try RequestHead(parsing: ByteBuffer(string: text))
        #expect(head.method == "POST" && head.target == "/shop/cart?item=7&x" && head.minorVersion == 1)
        #expect(head.framing == .length(4) && head.keepAlive && !head.isUpgrade)
        #expect(head.header("x-tenant") == "acme" && head.header("COOKIE") == "a=1" && head.header("missing") == nil)
        let routing = try HeadRoutingRequest(head: head, clientIP: "1.2.3.4", encodedSlashes: .refuse)
        #expect(routing.path == "/shop/cart" && routing.query == "item=7&x" && routing.host == "shop.example")
        #expect(routing.queryParameter("item") == "7" && routing.cookie("a") == "1")
        let absolute = try RequestHead(parsing: ByteBuffer(string: "GET http://shop.example/cart?x=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n"))
        let absoluteRouting = try HeadRoutingRequest(head: absolute, clientIP: "", encodedSlashes: .refuse)
        #expect(absoluteRouting.path == "/cart" && absoluteRouting.query == "x=1")
        // bytes above 0x7F in a value are forwarded as they are and shown as "?" to routing
        let latin = try RequestHead(parsing: ByteBuffer(bytes: Array("GET / HTTP/1.0\r\nX-Name: caf".utf8) + [0xE9] + Array("\r\n\r\n".utf8)))
        #expect(latin.header("x-name") == "caf?" && latin.bytes.getInteger(at: 27, as: UInt8.self) == 0xE9)
        #expect(!latin.keepAlive, "HTTP/1.0 closes unless asked")
    }

    /// Values are scanned eight bytes at a time: every kind of byte, at every offset of a value
    /// longer than one word, is accepted, trimmed or refused as RFC 9110 §5.5 says.
    @Test func everyByteAtEveryOffsetOfALongValue() throws {
        let lineStart = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".utf8)
        for byte: UInt8 in [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0xFF] {
            for offset in 0..<24 {
                var value = [UInt8](repeating: UInt8(ascii: "v"), count: 24)
                value[offset] = byte
                let input = lineStart + value + Array("\r\nX-After: 1\r\n\r\n".utf8)
                let valid = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
                let head = try? RequestHead(parsing: ByteBuffer(bytes: input))
                var reader = RequestReader()
                var buffer = ByteBuffer(bytes: input)
                let readsHead = (try? reader.next(&buffer)) != nil  // with the line ends searched for first
                #expect((head != nil) == valid && readsHead == valid, "byte \(byte) at \(offset)")
                guard let head else { continue }
                let whitespace: Set<UInt8> = [0x09, 0x20]
                var shown = value.map { $0 > 0x7F ? UInt8(ascii: "?") : $0 }[...]
                while let first = shown.first, whitespace.contains(first) { shown.removeFirst() }
                while let last = shown.last, whitespace.contains(last) { shown.removeLast() }
                #expect(head.header("x-long") == Substring(decoding: shown, as: UTF8.self), "byte \(byte) at \(offset)")
                #expect(head.header("x-after") == "1" && head.fields.count == 3)
            }
        }
    }

    @Test func aReaderReusesFieldStorageOnlyOnceTheHeadIsGone() throws {
        var reader = RequestReader()
        var bytes = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\nGET /c HTTP/1.1\r\nHost: c\r\n\r\n")
        func nextHead() throws -> RequestHead {
            guard case .head(let head) = try reader.next(&bytes) else { throw HTTPMessageError.malformed("no head") }
            guard case .end = try reader.next(&bytes) else { throw HTTPMessageError.malformed("no end") }
            return head
        }
        func storage(_ head: RequestHead) -> UnsafePointer<HTTPField>? { head.fields.withUnsafeBufferPointer { $0.baseAddress } }
        // a head still held keeps its own fields while the next one is read
        let first = try nextHead()
        let second = try nextHead()
        #expect(first.fields.count == 2 && first.header("x-one") == "1" && first.header("host") == "a")
        #expect(second.fields.count == 1 && second.header("host") == "b")
        #expect(storage(first) != storage(second))
        // once a head is gone, the next one parses into its storage. An allocation of the same
        // size in between takes the freed block if the reader had let it go, so an equal address
        // cannot come from malloc handing the same block out again.
        let secondStorage = storage(second)
        _ = consume second
        var sameSize: [HTTPField] = []
        sameSize.reserveCapacity(12)
        let third = try nextHead()
        #expect(third.header("host") == "c" && storage(third) == secondStorage)
        withExtendedLifetime(sameSize) {}
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTPBodyFraming.none),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", .none),
        ("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\n\r\n", .length(12)),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", .chunked),
    ])
    func framingIsTakenFromTheHead(_ text: String, _ framing: HTTPBodyFraming) throws {
        #expect(try RequestHead(parsing: ByteBuffer(string: text)).framing == framing)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\n: y\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ])
    func invalidHeadsAreRefused(_ text: String, _ status: UInt) {
        #expect(throws: HTTPMessageError.self, "\(text.debugDescription)") { try RequestHead(parsing: ByteBuffer(string: text)) }
        #expect(Self.read(Array(text.utf8)).error?.status == status, "\(text.debugDescription)")
    }

    @Test func chunkedBodiesReadTheSameWhereverTheyAreCut() {
        let request = Array("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let whole = Self.read(request)
        #expect(whole.error == nil)
        #expect(whole.records == [
            ReadRequest(method: "POST", target: "/u", body: Array("hello0123456789".utf8)),
            ReadRequest(method: "GET", target: "/next", body: []),
        ])
        for cut in 1..<request.count {
            let split = Self.read(request, cuts: [cut])
            #expect(split.records == whole.records && split.error == nil, "cut at \(cut)")
        }
    }

    @Test(arguments: ["zz\r\n", "5;a b\r\nhello\r\n", "5;a=b/c\r\nhello\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "5 \r\nhello\r\n", "1234567890abcdef0\r\n", "0\r\nBad Trailer\r\n\r\n", "0\r\nContent-Length: 1\r\n\r\n", "5;a\u{1}\r\n"])
    func invalidChunkFramingIsRefused(_ body: String) {
        let request = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "0\r\n\r\n"
        #expect(Self.read(Array(request.utf8)).error?.status == 400, "\(body.debugDescription)")
    }

    @Test func headsLargerThan64KiBAreRefusedBeforeTheyEnd() {
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "x", count: 70_000))".utf8)
        #expect(Self.read(request, cuts: Array(stride(from: 1000, to: 70_000, by: 1000))).error == .headTooLarge)
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        #expect(Self.read(Array("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)).records.map(\.target) == ["/"])
    }

    static func response(_ text: String, toHEAD: Bool = false) throws -> ResponseHead {
        try ResponseHead(parsing: ByteBuffer(string: text), toHEAD: toHEAD)
    }

    @Test func responseFramingFollowsRFC9112() throws {
        #expect(try Self.response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing == .length(5))
        #expect(try Self.response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", toHEAD: true).framing == .none)
        #expect(try Self.response("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").framing == .none)
        #expect(try Self.response("HTTP/1.1 304 Not Modified\r\n\r\n").framing == .none)
        #expect(try Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing == .chunked)
        #expect(try Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").framing == .untilClose)
        #expect(try Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing == .chunked)
        // empty list elements: parsers differ (llhttp reads "chunked," as not chunked), so refused
        for value in ["chunked,", ", chunked", "gzip,,chunked", "chunked, ", ""] {
            #expect(throws: HTTPMessageError.self, "\(value.debugDescription)") {
                try Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(value)\r\n\r\n")
            }
        }
        let unframed = try Self.response("HTTP/1.0 200 OK\r\n\r\n")
        #expect(unframed.framing == .untilClose && !unframed.keepAlive)
        #expect(try Self.response("HTTP/1.1 100 Continue\r\n\r\n").isInterim)
        #expect(throws: HTTPMessageError.self) { try Self.response("HTTP/1.0 100 Continue\r\n\r\n") }
        #expect(throws: HTTPMessageError.self) { try Self.response("HTTP/1.0 101 Switching Protocols\r\n\r\n") }
        let bare = try Self.response("HTTP/1.1 503\r\nContent-Length: 5, 5\r\n\r\n".replacingOccurrences(of: ", 5", with: ""))
        #expect(bare.status == 503 && bare.reasonStart == bare.reasonEnd)
        // a reason phrase is read like a header value: HTAB and obs-text pass, other controls and DEL do not
        let phrase = Array("Quite\tall \u{E9}".utf8) + [0xFF] + Array(" right".utf8)
        let reason = try ResponseHead(parsing: ByteBuffer(bytes: Array("HTTP/1.1 200 ".utf8) + phrase + Array("\r\n\r\n".utf8)))
        #expect(reason.bytes.getBytes(at: reason.reasonStart, length: reason.reasonEnd - reason.reasonStart) == phrase)
        for control: UInt8 in [0x00, 0x0A, 0x1F, 0x7F] {
            #expect(throws: HTTPMessageError.self, "byte \(control)") {
                try ResponseHead(parsing: ByteBuffer(bytes: Array("HTTP/1.1 200 Quite all".utf8) + [control] + Array(" right\r\n\r\n".utf8)))
            }
        }
        #expect(throws: HTTPMessageError.self) { try Self.response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") }
        #expect(throws: HTTPMessageError.self) { try Self.response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") }
        #expect(throws: HTTPMessageError.self) { try Self.response("HTTP/1.1 20 OK\r\n\r\n") }
    }

    @Test func interimResponsesComeBeforeTheFinalOne() throws {
        var reader = ResponseReader()
        var bytes = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        var statuses: [UInt] = []
        var body = ""
        while let part = try reader.next(&bytes) {
            switch part {
            case .head(let head): statuses.append(head.status)
            case .body(let chunk): body += String(buffer: chunk)
            case .end: statuses.append(0)
            }
        }
        #expect(statuses == [100, 200, 0] && body == "ok")
    }

    // MARK: differential fuzzing

    static let seeds = [
        "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n",
        "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPUT /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.0\r\n\r\n",
    ]

    static let fragments = [
        "\r\n", "\n", "\r", " ", "\t", ":", ",", ";", "\"", "0", "5", "a", "f", "ff", "-1", "+", "\u{0}", "\u{7f}", "\u{80}",
        "Content-Length: 3\r\n", "Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: identity\r\n",
        "chunked", "Host: y\r\n", "HTTP/1.0", "HTTP/1.1", "GET ", "POST ", "0\r\n\r\n", "3\r\nabc\r\n",
    ].map { Array($0.utf8) }

    static let llhttpMethods: Set = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"]

    /// Whatever bytes arrive, every request Fulcrum reads is one llhttp reads the same way (same
    /// method, target and body): Fulcrum may refuse more, never frame differently. Reading the
    /// bytes in two pieces gives the same result as in one. The seed is fixed so that a failure can
    /// be replayed; FULCRUM_FUZZ_ITERATIONS runs longer.
    @Test func fuzzedRequestsAreNeverFramedDifferentlyFromLLHTTP() {
        // llhttp refuses methods it does not know; Fulcrum forwards any token (RFC 9110 §9.1)
        Self.compareWithLLHTTP(
            seeds: Self.seeds, seed: 0x5EED_F00D, read: Self.read, readWithLLHTTP: Self.readWithNIO,
            comparable: { $0.prefix { Self.llhttpMethods.contains($0.method) } })
    }

    /// Fuzzes `read` against `readWithLLHTTP`: for mutations of `seeds`, the records Fulcrum reads
    /// (up to the first not `comparable`) are the first ones llhttp reads, and reading the bytes in
    /// two pieces gives the same result as in one. The seed is fixed so that a failure replays;
    /// FULCRUM_FUZZ_ITERATIONS runs longer.
    static func compareWithLLHTTP<Record: Equatable>(
        seeds: [String], seed: UInt64, read: ([UInt8], [Int]) -> (records: [Record], error: HTTPMessageError?),
        readWithLLHTTP: ([UInt8]) -> [Record], comparable: ([Record]) -> ArraySlice<Record> = { $0[...] }
    ) {
        var random = SplitMix(seed: seed)
        var compared = 0
        for iteration in 0..<fuzzIterations {
            let input = mutation(of: seeds, &random)
            let ours = read(input, [])
            let mine = Array(comparable(ours.records))
            let theirs = readWithLLHTTP(input)
            compared += mine.count
            let agrees = Array(theirs.prefix(mine.count)) == mine
            #expect(agrees, "iteration \(iteration): \(String(decoding: input, as: UTF8.self).debugDescription) ours \(mine) llhttp \(theirs)")
            let cut = Int(random.next() % UInt64(input.count + 1))
            let split = read(input, [cut])
            #expect(split.records == ours.records && split.error == ours.error, "iteration \(iteration), cut at \(cut)")
            if !agrees { break }  // one reproducible case is enough
        }
        #expect(compared > fuzzIterations / 4, "the mutations leave enough valid messages to compare")
    }

    static let fuzzIterations = Int(ProcessInfo.processInfo.environment["FULCRUM_FUZZ_ITERATIONS"] ?? "") ?? 20_000

    /// One of `seeds` with 1 to 4 random edits: a fragment inserted, bytes removed, a byte
    /// replaced, or a run of bytes repeated.
    static func mutation(of seeds: [String], _ random: inout SplitMix) -> [UInt8] {
        var input = Array(seeds[Int(random.next() % UInt64(seeds.count))].utf8)
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = Int(random.next() % UInt64(input.count + 1))
            switch random.next() % 4 {
            case 0: input.insert(contentsOf: fragments[Int(random.next() % UInt64(fragments.count))], at: position)
            case 1: input.removeSubrange(position..<min(input.count, position + 1 + Int(random.next() % 6)))
            case 2 where position < input.count: input[position] = UInt8(truncatingIfNeeded: random.next())
            default: input.insert(contentsOf: input[position...].prefix(12), at: position)
            }
        }
        return input
    }

    /// Requests that try to make the node read more than Fulcrum framed: the class of request
    /// smuggling through `Connection`, whose listed names are hop-by-hop.
    static let smugglingSeeds = [
        "POST /a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nConnection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /a HTTP/1.0\r\nConnection: keep-alive, Content-Length, Host\r\nContent-Length: 4\r\n\r\nGET ",
        "GET http://other.example/p/../q HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n",
    ]

    /// What a node is sent for each request Fulcrum reads from `input`: the rewritten head and
    /// the body as forwarded (chunk framing included), with the target and body Fulcrum meant.
    /// Requests Fulcrum refuses and upgrades (whose bytes after the head are not HTTP) are left out.
    static func forwardedRequests(_ input: [UInt8]) -> [(bytes: [UInt8], meant: ReadRequest)] {
        var reader = RequestReader()
        var unread = ByteBuffer(bytes: input)
        var forwarded: [(bytes: [UInt8], meant: ReadRequest)] = []
        var current: (head: RequestHead, body: [UInt8])?
        while let part = try? reader.next(&unread) {
            switch part {
            case .head(let head): current = (head, [])
            case .body(let bytes): current?.body += Array(buffer: bytes)
            case .end:
                guard let (head, body) = current else { return forwarded }
                current = nil
                guard !head.isUpgrade, let request = try? HeadRoutingRequest(head: head, clientIP: "10.0.0.1", encodedSlashes: .refuse) else {
                    return forwarded
                }
                var upstream = ByteBuffer()
                HeaderRewriter.writeUpstreamRequest(request, clientIP: "10.0.0.1", overTLS: false, requestIDHeader: "X-Request-ID", requestID: .generated(7), to: &upstream)
                var target = String(request.path)
                if request.target.hasQuery { target += "?" + request.query }
                let meant = ReadRequest(method: head.method, target: target, body: head.framing == .chunked ? dechunk(body) : body)
                forwarded.append((Array(buffer: upstream) + body, meant))
                if !head.keepAlive { return forwarded }
            }
        }
        return forwarded
    }

    /// Whatever the client sent, each request Fulcrum forwards is read by llhttp as exactly one
    /// request, with the target and body Fulcrum meant: a request written after it on the same
    /// upstream connection (the next client's, in a pool) is read as itself. Without the rule that
    /// `Connection` cannot remove framing fields, the smuggling seeds fail at once.
    @Test func fuzzedRequestsReachTheNodeAsExactlyOneRequestEach() {
        var random = SplitMix(seed: 0xF0D_5EED)
        var compared = 0
        let next = ReadRequest(method: "GET", target: "/next-client", body: [])
        let nextBytes = Array("GET /next-client HTTP/1.1\r\nHost: victim\r\n\r\n".utf8)
        for iteration in 0..<Self.fuzzIterations {
            let input = iteration < Self.smugglingSeeds.count
                ? Array(Self.smugglingSeeds[iteration].utf8) : Self.mutation(of: Self.seeds + Self.smugglingSeeds, &random)
            for (bytes, meant) in Self.forwardedRequests(input) where Self.llhttpMethods.contains(meant.method) {
                let theirs = Self.readWithNIO(bytes + nextBytes)
                compared += 1
                guard theirs == [meant, next] else {
                    Issue.record("iteration \(iteration): \(String(decoding: input, as: UTF8.self).debugDescription) sent \(String(decoding: bytes, as: UTF8.self).debugDescription): meant \(meant), llhttp read \(theirs)")
                    return
                }
            }
        }
        #expect(compared > Self.fuzzIterations / 4, "the mutations leave enough valid requests to compare")
    }

    static let responseSeeds = [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil the connection closes",
    ]

    struct ReadResponse: Equatable, CustomStringConvertible {
        var status: UInt
        var body: [UInt8]
        var description: String { "\(status) body=\(String(decoding: body, as: UTF8.self).debugDescription)" }
    }

    /// The responses a node sends on one connection before closing it, as an upstream connection
    /// reads them: up to a protocol switch or a response that does not keep the connection.
    static func readResponses(_ input: [UInt8], cuts: [Int] = []) -> (records: [ReadResponse], error: HTTPMessageError?) {
        readAll(input, cuts: cuts, keepsConnection: { (head: ResponseHead) in head.keepAlive }, stopsAt: { $0.status == 101 }) {
            ReadResponse(status: $0.status, body: $1)
        }
    }

    /// What NIOHTTP1 (llhttp) reads from the same bytes, the connection closing after them.
    static func readResponsesWithNIO(_ input: [UInt8]) -> [ReadResponse] {
        final class Collector: ChannelInboundHandler {
            typealias InboundIn = HTTPClientResponsePart
            var responses: [ReadResponse] = []
            var current: ReadResponse?
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                switch unwrapInboundIn(data) {
                case .head(let head) where head.status.code < 200: current = nil
                case .head(let head): current = ReadResponse(status: head.status.code, body: [])
                case .body(let bytes): current?.body += Array(buffer: bytes)
                case .end:
                    if let current { responses.append(current) }
                    current = nil
                }
            }
        }
        let collector = Collector()
        let channel = EmbeddedChannel()
        let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .forward)
        try? channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(decoder), collector)
        // the decoder pairs each response with a request written before it
        for _ in 0..<8 {
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")), promise: nil)
            channel.write(HTTPClientRequestPart.end(nil), promise: nil)
        }
        channel.flush()
        _ = try? channel.writeInbound(ByteBuffer(bytes: input))
        _ = try? channel.finish()
        return collector.responses
    }

    /// The same for responses from a node, whose framing decides what the client gets next.
    @Test func fuzzedResponsesAreNeverFramedDifferentlyFromLLHTTP() {
        Self.compareWithLLHTTP(seeds: Self.responseSeeds, seed: 0xBAD_C0DE, read: Self.readResponses, readWithLLHTTP: Self.readResponsesWithNIO)
    }
}

/// A small deterministic generator (SplitMix64), so fuzz failures replay.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
