import FulcrumHTTP1
import NIOCore
import NIOEmbedded
import Testing
@testable import FulcrumProxy

/// ``WriteBatch`` between a handler and an outbound recorder on an EmbeddedChannel: how many
/// buffers and flushes reach the channel, and that the bytes keep their order.
@Suite struct WriteBatchTests {
    /// Counts the writes and flushes that pass through it.
    final class Recorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var writes = 0
        var flushes = 0
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            writes += 1
            context.write(data, promise: promise)
        }
        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    /// The handler whose context the batch writes through.
    final class Writer: ChannelInboundHandler {
        typealias InboundIn = Never
        var context: ChannelHandlerContext!
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    }

    static func setUp() throws -> (EmbeddedChannel, Recorder, ChannelHandlerContext) {
        let recorder = Recorder()
        let writer = Writer()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([recorder, writer])
        return (channel, recorder, writer.context)
    }

    static func sent(_ channel: EmbeddedChannel) throws -> [String] {
        var buffers: [String] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            buffers.append(buffer.readString(length: buffer.readableBytes) ?? "")
        }
        return buffers
    }

    @Test func aHeadAndASmallBodyLeaveAsOneBuffer() throws {
        let (channel, recorder, context) = try Self.setUp()
        var batch = WriteBatch()
        batch.writeHead(to: context) { $0.writeString("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") }
        batch.write(ByteBuffer(string: "he"), to: context)
        batch.write(ByteBuffer(string: "llo"), to: context)
        batch.flush(context)
        #expect(recorder.writes == 1)
        #expect(recorder.flushes == 1)
        #expect(try Self.sent(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])
    }

    @Test func aBodyThatWouldPassTheLimitIsPassedOnAsItIs() throws {
        let (channel, recorder, context) = try Self.setUp()
        var batch = WriteBatch()
        let large = String(repeating: "x", count: WriteBatch.coalescedLimit)
        batch.writeHead(to: context) { $0.writeString("HEAD\r\n") }
        batch.write(ByteBuffer(string: large), to: context)
        batch.write(ByteBuffer(string: "tail"), to: context)  // nothing is open any more
        batch.flush(context)
        #expect(recorder.writes == 3)
        #expect(try Self.sent(channel) == ["HEAD\r\n", large, "tail"])
    }

    @Test func aFlushWithNothingWrittenIsNotPassedOn() throws {
        let (channel, recorder, context) = try Self.setUp()
        var batch = WriteBatch()
        batch.flush(context)
        batch.write(ByteBuffer(string: "a"), to: context)
        batch.flush(context)
        batch.flush(context)
        #expect(recorder.flushes == 1)
        #expect(try Self.sent(channel) == ["a"])
    }

    @Test func writeAndFlushSendsWhatIsQueuedFirst() throws {
        let (channel, recorder, context) = try Self.setUp()
        var batch = WriteBatch()
        batch.writeHead(to: context) { $0.writeString("head") }
        batch.write(ByteBuffer(string: "+body"), to: context)
        batch.writeAndFlush(ByteBuffer(string: "last"), to: context, promise: nil)
        batch.flush(context)  // everything went with writeAndFlush
        #expect(recorder.flushes == 1)
        #expect(try Self.sent(channel) == ["head+body", "last"])
    }

    /// The address of a buffer's bytes.
    static func memory(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    @Test func aHeadIsWrittenIntoTheLastHeadsMemoryOnceNothingHoldsIt() throws {
        let (channel, _, context) = try Self.setUp()
        var batch = WriteBatch()
        batch.writeHead(to: context) { $0.writeString("first head") }
        batch.flush(context)
        let first = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let firstMemory = Self.memory(first)
        // while the first head is still held (a write not yet done), the second gets memory of its own
        batch.writeHead(to: context) { $0.writeString("second") }
        batch.flush(context)
        let second = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: first) == "first head" && String(buffer: second) == "second")
        #expect(Self.memory(second) != firstMemory)
        // once the second is released, the third is written into its memory; a block of the same
        // size is allocated meanwhile, so malloc cannot hand the same address back by chance
        let secondMemory = Self.memory(second)
        let secondCapacity = second.capacity
        _ = consume second
        let sameSize = ByteBufferAllocator().buffer(capacity: secondCapacity)
        batch.writeHead(to: context) { $0.writeString("third") }
        batch.flush(context)
        let third = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: third) == "third" && Self.memory(third) == secondMemory)
        #expect(sameSize.capacity == secondCapacity)
    }
}
