import Glibc
import NIOCore
import NIOPosix
import Synchronization

// PORT: where to listen on 127.0.0.1; BACKENDS: host:port,host:port,... taken in turn per connection;
// WORKERS: event loops (1 by default). The same environment as the FULCRUM_CMD hook
// of ../shared/bench, so bench/relay-floor.sh can run the relay in Fulcrum's place.
func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
let port = Int(environment("PORT") ?? "") ?? 18490
let workers = Int(environment("WORKERS") ?? "") ?? 1
let backends = try (environment("BACKENDS") ?? "127.0.0.1:18481").split(separator: ",").map { entry in
    let parts = entry.split(separator: ":")
    return try SocketAddress(ipAddress: String(parts[0]), port: Int(parts[1])!)
}

/// One side of a relayed connection pair: what it reads is written to the partner's channel,
/// and flushed when the read cycle completes.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var context: ChannelHandlerContext?
    var partner: RelayHandler?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        partner = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Which backend the next accepted connection goes to, whichever event loop accepts it.
let nextBackend = Atomic<Int>(0)

/// Connects each accepted connection to the next backend on the same event loop; the client's
/// reads wait until the upstream connection is up.
final class AcceptHandler: ChannelInboundHandler {
    typealias InboundIn = Never

    func channelActive(context: ChannelHandlerContext) {
        let client = RelayHandler()
        try! context.pipeline.syncOperations.addHandler(client)
        let address = backends[nextBackend.wrappingAdd(1, ordering: .relaxed).oldValue % backends.count]
        let clientChannel = context.channel
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RelayHandler()) }
            }
            .connect(to: address)
            .assumeIsolatedUnsafeUnchecked()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let upstream = try! channel.pipeline.syncOperations.handler(type: RelayHandler.self)
                    upstream.partner = client
                    client.partner = upstream
                    try! clientChannel.syncOptions!.setOption(.autoRead, value: true)
                case .failure:
                    clientChannel.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: workers)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.autoRead, value: false)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptHandler()) }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("relaying 127.0.0.1:\(port) to \(backends.count) backends")
try server.closeFuture.wait()
