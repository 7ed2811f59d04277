// swift-tools-version: 6.1
import PackageDescription

// The floor of a SwiftNIO proxy on this machine: bytes relayed between each client connection and
// one upstream connection, with nothing parsed, routed or counted. Per request it makes the same
// channel operations as Fulcrum (a read on each side, a write and a flush on each side), so its
// CPU time per request is what SwiftNIO itself costs. Used by bench/cpu-per-request.sh (RELAY=)
// and bench/relay-floor.sh (in the peer harness, with WORKERS event loops).
let package = Package(
    name: "nio-relay",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "nio-relay",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        )
    ]
)
