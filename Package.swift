// swift-tools-version: 6.1
import PackageDescription

/// Release builds of the per-request code skip Swift's run-time exclusivity checks: with them,
/// `bench/counts-per-request.sh` counted 154 `swift_beginAccess` calls per proxied request (a bare
/// SwiftNIO relay makes 56); without them, 91, and 17 % less user time per request (bench/RESULTS.md).
/// Debug builds, and so every `swift test` run, keep the checks and trap on an overlapping access.
let releaseDataPlane: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

/// The HTTP/1 reader and writer are called for every request from another module (the proxy, and
/// the health probe): their bodies, generic ones included, are made available to the callers'
/// optimiser, so that `MessageReader<RequestHead>` is specialised and inlined in the proxy as it
/// was when the reader lived in the proxy's module (Swift's default cross-module optimisation
/// only offers very small functions).
let releaseHTTP1: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))
]

let package = Package(
    name: "Fulcrum",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fulcrum", targets: ["fulcrum"]),
        .library(name: "FulcrumCore", targets: ["FulcrumCore"]),
        .library(name: "FulcrumProxy", targets: ["FulcrumProxy"]),
        .library(name: "FulcrumHealth", targets: ["FulcrumHealth"]),
        .library(name: "FulcrumStore", targets: ["FulcrumStore"]),
        .library(name: "FulcrumAdmin", targets: ["FulcrumAdmin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "FulcrumCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: releaseDataPlane
        ),
        .target(
            name: "FulcrumHTTP1",
            dependencies: ["FulcrumCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: releaseHTTP1
        ),
        .target(
            name: "FulcrumTLS",
            dependencies: [
                "FulcrumCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "FulcrumProxy",
            dependencies: [
                "FulcrumCore",
                "FulcrumHTTP1",
                "FulcrumTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: releaseDataPlane
        ),
        .target(
            name: "FulcrumHealth",
            dependencies: [
                "FulcrumCore",
                "FulcrumHTTP1",
                "FulcrumTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FulcrumStore",
            dependencies: [
                "FulcrumCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "FulcrumAdmin",
            dependencies: [
                "FulcrumTLS",
                "FulcrumCore",
                "FulcrumProxy",
                "FulcrumStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [
                .embedInCode("Console/index.html"), .embedInCode("Console/console.css"), .embedInCode("Console/console.js"),
                .embedInCode("Console/favicon.svg"),
            ]
        ),
        .executableTarget(
            name: "fulcrum",
            dependencies: [
                "FulcrumCore",
                "FulcrumProxy",
                "FulcrumHealth",
                "FulcrumStore",
                "FulcrumAdmin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "FulcrumCoreTests", dependencies: ["FulcrumCore"]),
        // glibc's heap statistics, which Swift's Glibc module does not import, for the memory tests
        .target(name: "CHeapInUse", path: "Tests/CHeapInUse"),
        // the `.realSockets` trait: socket tests one at a time, unit tests in parallel beside them
        .target(name: "RealSockets", path: "Tests/RealSockets"),
        // a certificate authority made per test, and the certificates it issues, as PEM files
        .target(
            name: "TestCertificates",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/TestCertificates"
        ),
        // a PostgreSQL server of Debian's package, started per test process in a temporary directory
        .target(
            name: "TestPostgres",
            dependencies: [
                "RealSockets",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/TestPostgres"
        ),
        .testTarget(
            name: "FulcrumStoreTests",
            dependencies: [
                "FulcrumStore", "FulcrumCore", "TestPostgres", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumAdminTests",
            dependencies: [
                "RealSockets",
                "TestCertificates",
                "TestPostgres",
                "FulcrumAdmin",
                "FulcrumProxy",
                "FulcrumStore",
                "FulcrumCore",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "fulcrumTests",
            dependencies: [
                "RealSockets",
                "TestCertificates",
                "TestPostgres",
                "fulcrum",
                "FulcrumStore",
                "FulcrumCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FulcrumProxyTests",
            dependencies: [
                "RealSockets",
                "FulcrumProxy",
                "FulcrumHTTP1",
                "FulcrumTLS",
                "TestCertificates",
                "CHeapInUse",
                "FulcrumHealth",
                "FulcrumCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
    ]
)
