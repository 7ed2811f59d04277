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
        batch.writeOwned(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), to: context)
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
        batch.writeOwned(ByteBuffer(string: "HEAD\r\n"), to: context)
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
        batch.writeOwned(ByteBuffer(string: "head"), to: context)
        batch.write(ByteBuffer(string: "+body"), to: context)
        batch.writeAndFlush(ByteBuffer(string: "last"), to: context, promise: nil)
        batch.flush(context)  // everything went with writeAndFlush
        #expect(recorder.flushes == 1)
        #expect(try Self.sent(channel) == ["head+body", "last"])
    }
}
