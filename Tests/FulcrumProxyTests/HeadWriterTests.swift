import FulcrumHTTP1
import NIOCore
import Testing

@testable import FulcrumProxy

struct HeadWriterTests {
    @Test func piecesLandInOrderBehindWhatTheBufferHolds() {
        var buffer = ByteBuffer(string: "before|")
        let received: [UInt8] = Array("GET /x".utf8)
        buffer.writeHead(maximumLength: 64) { out in
            received.withUnsafeBytes { out.append($0) }
            out.append(" HTTP/1.1\r\n")
            out.appendField("X-Name", "café")
            out.append(String(repeating: "z", count: 3))
            #expect(out.count == 6 + 11 + HeadWriter.fieldLength("X-Name", "café") + 3)
        }
        #expect(String(buffer: buffer) == "before|GET /x HTTP/1.1\r\nX-Name: café\r\nzzz")
    }

    @Test func aHeadLongerThanItsRoomTraps() async {
        await #expect(processExitsWith: .failure) {
            // the buffer has room for more: the writer stops at what was reserved
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            buffer.writeHead(maximumLength: 4) { out in
                out.append("12345")
            }
        }
    }

    @Test func aStatusLineWithoutReasonGainsItsSpace() throws {
        #expect(try HandlerTests.clientText("HTTP/1.1 503\r\n\r\n", close: true)
            == "HTTP/1.1 503 \r\nX-Request-ID: r\r\nConnection: close\r\n\r\n")
    }

    @Test func aGeneratedRequestIDIsSixteenHexDigitsWrittenWithoutAString() {
        let id = RequestID.generated(0x0123_4567_89ab_cdef)
        #expect(id.text == "0123456789abcdef" && id.length == 16)
        #expect(RequestID.generated(0xa1).text == "00000000000000a1")
        var buffer = ByteBuffer()
        buffer.writeHead(maximumLength: HeadWriter.fieldLength("X-Request-ID", id)) { out in
            out.appendField("X-Request-ID", id)
        }
        #expect(String(buffer: buffer) == "X-Request-ID: 0123456789abcdef\r\n")
        #expect(RequestID.received("trace-1").text == "trace-1" && !RequestID.received("trace-1").isGenerated)
    }
}
