import FulcrumAdmin
import FulcrumCore
import FulcrumHealth
import FulcrumProxy
import Logging
import ServiceLifecycle
import UnixSignals

/// A running Fulcrum as services in one `ServiceGroup` (swift-service-lifecycle, as Hummingbird's
/// `Application` runs): SIGTERM and SIGINT start a graceful shutdown, which stops the services in
/// the reverse of their order here, each after the one behind it has finished: signals, the
/// store follower, the admin API, the health checks, and last the data plane, which lets the
/// requests in flight finish (up to `drain_timeout`).
struct GatewayServices {
    let server: ProxyServer
    let checker: HealthChecker
    var admin: AdminServer?
    /// The rollout controller's ticks, and in store mode the versions other processes commit.
    var follower: (@Sendable () async -> Void)?
    /// What SIGHUP and SIGUSR1 do.
    var onReload: @Sendable () async -> Void = {}
    var onStatus: @Sendable () async -> Void = {}
    /// Run when every service has stopped (the demo removes its nodes and its temporary store).
    var afterStop: @Sendable () async -> Void = {}
    let logger: Logger

    /// Runs until a graceful shutdown has completed.
    func run() async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: DataPlane(server: server, logger: logger), serviceName: "data plane"),
            .init(service: WhenStopping { checker.stop() }, serviceName: "health checks"),
        ]
        if let admin { services.append(.init(service: WhenStopping { await admin.stop() }, serviceName: "admin API")) }
        if let follower { services.append(.init(service: Follower(work: follower), serviceName: "store follower")) }
        services.append(.init(service: Signals(onReload: onReload, onStatus: onStatus), serviceName: "signals"))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await afterStop()
        logger.info("stopped")
    }

    /// Serves until a graceful shutdown, then drains: idle connections close at once, busy ones
    /// after their response, and whatever is still open after `drain_timeout` is cut.
    private struct DataPlane: ServiceLifecycle.Service {
        let server: ProxyServer
        let logger: Logger

        func run() async throws {
            try? await gracefulShutdown()  // returns on a graceful shutdown, throws when cancelled: drain either way
            let timeout = server.runtime.config.drainTimeout
            logger.info("draining", metadata: ["timeout": "\(ConfigDuration.format(timeout))"])
            let cut = await server.drain(timeout: timeout)
            if cut > 0 { logger.warning("drain timeout reached, connections closed", metadata: ["count": "\(cut)"]) }
            try? await server.shutdown()
        }
    }

    /// A part that runs on its own (health checks, the admin API) and only needs stopping.
    private struct WhenStopping: ServiceLifecycle.Service {
        let stop: @Sendable () async -> Void

        func run() async throws {
            try? await gracefulShutdown()
            await stop()
        }
    }

    /// Work that runs until the graceful shutdown cancels it.
    private struct Follower: ServiceLifecycle.Service {
        let work: @Sendable () async -> Void

        func run() async throws {
            await cancelWhenGracefulShutdown { await work() }
        }
    }

    /// SIGHUP reloads and SIGUSR1 reports, one at a time, until the graceful shutdown. Both are
    /// ignored from the process's first instruction (``Fulcrum/main()``) until this takes them.
    private struct Signals: ServiceLifecycle.Service {
        let onReload: @Sendable () async -> Void
        let onStatus: @Sendable () async -> Void

        func run() async throws {
            for await signal in await UnixSignalsSequence(trapping: .sighup, .sigusr1).cancelOnGracefulShutdown() {
                if signal == .sighup { await onReload() } else { await onStatus() }
            }
        }
    }
}
