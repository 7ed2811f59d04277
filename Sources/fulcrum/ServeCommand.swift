import ArgumentParser
import Dispatch
import FulcrumCore
import FulcrumHealth
import FulcrumProxy
import Logging
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// `fulcrum serve`: runs the balancer. SIGHUP reloads the file, SIGTERM or SIGINT drains and exits.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the load balancer.",
        discussion: """
            Signals: SIGHUP re-reads the configuration file (an invalid file is rejected and the running \
            configuration keeps serving); SIGUSR1 logs the health of every node; SIGTERM or SIGINT stops \
            accepting connections, lets requests in flight finish (up to drain_timeout) and exits 0.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON).")
    var config: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "fulcrum")
        let runtime: RuntimeConfig
        do {
            runtime = try ConfigFile.compile(config, generation: 1)
        } catch {
            print("\(config): \(error)")
            throw ExitCode(1)
        }
        let server = try ProxyServer(runtime: runtime)
        do {
            try await server.start()
        } catch {
            logger.critical("\(error)")
            try? await server.shutdown()
            throw ExitCode(1)
        }
        let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { service, node, result in
            server.recordProbe(service: service, node: node, success: result.success, detail: result.detail)
        }
        checker.apply(runtime.config)
        logger.info("serving", metadata: ["config": "\(config)", "generation": "1", "probed_nodes": "\(checker.probedNodes)"])
        let configPath = config
        let exitCode = await SignalLoop.run(
            onStatus: {
                Task {
                    let summary = await server.state().summary
                    logger.notice("health summary\n\(summary)")
                }
            },
            onReload: {
                let next = server.runtime.generation + 1
                do {
                    let compiled = try ConfigFile.compile(configPath, generation: next)
                    server.apply(compiled)
                    checker.apply(compiled.config)
                    logger.info("configuration reloaded", metadata: ["config": "\(configPath)", "generation": "\(next)"])
                } catch {
                    logger.error("configuration rejected, the running one keeps serving", metadata: ["config": "\(configPath)", "error": "\(error)"])
                }
            },
            onStop: {
                let timeout = server.runtime.config.drainTimeout
                logger.info("draining", metadata: ["timeout": "\(ConfigDuration.format(timeout))"])
                checker.stop()
                let cut = await server.drain(timeout: timeout)
                if cut > 0 { logger.warning("drain timeout reached, connections closed", metadata: ["count": "\(cut)"]) }
                try? await server.shutdown()
                logger.info("stopped")
                return 0
            })
        throw ExitCode(exitCode)
    }
}

/// Shared `--log-level` option.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap() {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Turns SIGHUP into reloads, SIGUSR1 into a status report and SIGTERM/SIGINT into one graceful stop.
enum SignalLoop {
    static func run(
        onStatus: @escaping @Sendable () -> Void = {}, onReload: @escaping @Sendable () -> Void,
        onStop: @escaping @Sendable () async -> Int32
    ) async -> Int32 {
        let queue = DispatchQueue(label: "fulcrum.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGHUP, SIGUSR1, SIGTERM, SIGINT] { signal(sig, SIG_IGN) }
        for (sig, handler) in [(SIGHUP, onReload), (SIGUSR1, onStatus)] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler(handler: handler)
            source.resume()
            sources.append(source)
        }
        let code: Int32 = await withCheckedContinuation { continuation in
            let once = OnceFlag()
            for sig in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler {
                    guard once.claim() else { return }
                    Task { continuation.resume(returning: await onStop()) }
                }
                source.resume()
                sources.append(source)
            }
        }
        for source in sources { source.cancel() }
        return code
    }
}

/// True exactly once, for the first caller (signal handlers run on one serial queue).
final class OnceFlag: @unchecked Sendable {
    private var claimed = false
    func claim() -> Bool {
        if claimed { return false }
        claimed = true
        return true
    }
}
