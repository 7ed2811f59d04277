import ArgumentParser
import Dispatch
import FulcrumAdmin
import FulcrumCore
import FulcrumHealth
import FulcrumProxy
import Foundation
import FulcrumStore
import Logging
import NIOCore
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

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON). With --store, it is imported only into an empty store, and again as a new version on SIGHUP.")
    var config: String?

    @Option(help: "Keep configuration versions, the audit log and admin tokens in this store and serve the admin API: a SQLite file, or postgres://USER@HOST/DATABASE shared by several instances.")
    var store: String?

    @Option(help: "A file holding the PostgreSQL store's password (or set FULCRUM_STORE_PASSWORD or PGPASSWORD).")
    var storePasswordFile: String?

    @Option(help: "With a PostgreSQL store: where to keep a copy of the configuration applied last (mode 0600), started from when the store cannot be reached at start.")
    var lastKnownGood = "fulcrum-last-known-good.json"

    @Option(help: "The admin API's address, with --store.")
    var admin = "127.0.0.1:9901"

    @Option(help: "A file holding the secret of the first admin token (used when the store has no token yet; or set FULCRUM_ADMIN_TOKEN).")
    var adminTokenFile: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if store == nil, config == nil { throw ValidationError("give --config FILE, --store FILE or both") }
        if HostAndPort(admin) == nil { throw ValidationError("--admin must be HOST:PORT, e.g. 127.0.0.1:9901") }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "fulcrum")
        OpenFileLimit.raise(logger: logger)
        var runtime: RuntimeConfig
        var activeVersion: ConfigVersion
        var bundles: [String: CertificateBundle] = [:]  // of the stored certificates the active version names
        var storeMode: StoreMode?
        do {
            if let store {
                let password = try storePasswordFile.map { try ConfigFile.read($0).trimmingCharacters(in: .whitespacesAndNewlines) }
                let address = try StoreAddress(store, password: password)
                let mode = StoreMode(store: try await address.open(logger: logger), configPath: config, logger: logger)
                do {
                    activeVersion = try await mode.bootstrap()
                    let config = try FulcrumConfig.parse(document: activeVersion.document)
                    bundles = try await ConfigController.storedBundles(of: config, in: mode.store)
                    runtime = try StoreMode.compile(config, activeVersion.number, bundles)
                    if mode.isShared { Self.keepingCopy(at: lastKnownGood, logger: logger)(activeVersion, bundles) }
                    try await mode.ensureFirstToken(tokenFile: adminTokenFile)
                } catch let unreachable as PostgresConfigStore.Unreachable where FileManager.default.fileExists(atPath: lastKnownGood) {
                    // the store will be followed once it answers; until then, what this instance applied last
                    let copy = try LastKnownGood.read(from: lastKnownGood)
                    activeVersion = copy.version
                    bundles = copy.bundles
                    runtime = try StoreMode.compile(FulcrumConfig.parse(document: copy.version.document), copy.version.number, copy.bundles)
                    logger.warning(
                        "the store cannot be reached: running on a last-known-good copy",
                        metadata: ["version": "\(copy.version.number)", "copy": "\(lastKnownGood)", "error": "\(unreachable)"])
                }
                storeMode = mode
            } else {
                let path = config ?? ""
                let text = try ConfigFile.read(path)
                runtime = try StoreMode.compile(FulcrumConfig.parse(text), 1, [:])
                activeVersion = VersionProposal(
                    document: try ConfigDocument.parse(text), actor: "file", source: .file, message: "read from \(path)", basedOn: nil
                ).version(number: 1)
            }
        } catch {
            print("\(config ?? store ?? ""): \(error)")
            throw ExitCode(1)
        }
        let server = try ProxyServer(runtime: runtime)
        let bound: [SocketAddress]
        do {
            bound = try await server.start()
        } catch {
            logger.critical("\(error)")
            try? await server.shutdown()
            throw ExitCode(1)
        }
        let checker = HealthChecker(group: MultiThreadedEventLoopGroup.singleton) { service, node, result in
            server.recordProbe(service: service, node: node, success: result.success, detail: result.detail)
        }
        checker.apply(runtime.config, nodeTLS: runtime.nodeTLS)
        let activate: ConfigController.Activate = { runtime in
            server.apply(runtime)
            checker.apply(runtime.config, nodeTLS: runtime.nodeTLS)
        }
        let control = if let storeMode {
            ConfigController(
                store: storeMode.store, active: activeVersion, bundles: bundles, compile: StoreMode.compile, activate: activate,
                onApplied: storeMode.isShared ? Self.keepingCopy(at: lastKnownGood, logger: logger) : nil, logger: logger)
        } else {
            ConfigController(serving: activeVersion, compile: StoreMode.compile, activate: activate, logger: logger)
        }
        var services = GatewayServices(server: server, checker: checker, logger: logger)
        services.onStatus = {
            let summary = await server.state().summary
            logger.notice("health summary\n\(summary)")
        }
        let configPath = config
        // the file becomes a new version, through the same controller as the admin API
        services.onReload = {
            if let configPath, await ConfigFile.reload(configPath, into: control, logger: logger) {
                return  // the new version's compilation read the certificate files
            }
            // certificate files renewed in place under an unchanged configuration
            do {
                let changed = try server.reloadCertificates()
                if changed > 0 { logger.info("certificates reloaded", metadata: ["changed": "\(changed)"]) }
            } catch {
                logger.error("certificates rejected, the served ones stay", metadata: ["error": "\(error)"])
            }
        }
        if let storeMode, let address = HostAndPort(admin) {
            let member = FleetMember(
                store: storeMode.store, controller: control,
                listen: bound.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" }, logger: logger)
            let rollouts = RolloutController(
                controller: control, proxy: server, fleet: storeMode.isShared ? (storeMode.store, member.id) : nil, logger: logger)
            do {
                let api = AdminAPI(controller: control, proxy: server, rollouts: rollouts, logger: logger)
                await api.loadTokens()
                services.admin = try await AdminServer.start(api: api, host: address.host, port: address.port)
            } catch {
                logger.critical("\(error)")
                try? await server.shutdown()
                throw ExitCode(1)
            }
            logger.info("admin API listening", metadata: ["address": "\(address.host):\(services.admin?.address.port ?? address.port)", "store": "\(storeMode.store.location)"])
            // rollouts, heartbeats, and versions committed by other processes
            services.follower = {
                await withDiscardingTaskGroup { group in
                    // one instance of a fleet judges and advances rollouts
                    group.addTask { await storeMode.store.whileLeading(.rollouts) { await rollouts.run() } }
                    group.addTask { await member.run() }
                    group.addTask { await rollouts.publishTraffic() }
                    // a wake-up from the store's notifications, or every 2 s; a burst of them
                    // is one refresh (the stream keeps one pending wake-up)
                    let (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                    group.addTask { await storeMode.store.watchForChanges { wake.yield() } }
                    group.addTask {
                        // a cancelled sleep ends the loop: refreshing once more during a stop only
                        // failed with CancellationError, logged as an error on every normal stop
                        while (try? await Task.sleep(for: .seconds(2))) != nil { wake.yield() }
                        wake.finish()
                    }
                    group.addTask {
                        for await _ in wakeUps {
                            do {
                                let activated = try await control.refresh()
                                if await !member.followed(error: nil), activated { await member.beat() }
                            } catch {
                                // the version served stays; said once, and shown in the instances view
                                if await member.followed(error: error) {
                                    logger.error("cannot apply the store's active version; the one served stays", metadata: ["error": "\(error)"])
                                }
                            }
                        }
                    }
                }
            }
        }
        logger.info("serving", metadata: ["config": "\(config ?? "-")", "generation": "\(runtime.generation)", "probed_nodes": "\(checker.probedNodes)"])
        try await services.run()
    }
}

extension ServeCommand {
    /// Writes every version applied to the last-known-good copy at `path` (a failure is logged:
    /// the version is applied all the same).
    static func keepingCopy(at path: String, logger: Logger) -> ConfigController.Applied {
        { version, bundles in
            do {
                try LastKnownGood.write(version, bundles: bundles, to: path)
            } catch {
                logger.error("cannot keep the last-known-good copy", metadata: ["copy": "\(path)", "error": "\(error)"])
            }
        }
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
