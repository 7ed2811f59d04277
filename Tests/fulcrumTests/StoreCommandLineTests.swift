import Foundation
import FulcrumCore
import FulcrumStore
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
import RealSockets
import TestPostgres
#endif

/// `fulcrum serve --store` and the store commands, run as a user runs them.
@Suite(.realSockets) struct StoreCommandLineTests {
    static let secret = "fulcrum_cli_test_secret_0123456789abcdef"

    /// A `fulcrum serve --store` process and its admin API.
    final class Server: @unchecked Sendable {  // its log buffer is read by one task at a time
        let process = Process()
        let errors = Pipe()
        let adminPort: Int
        private let session = URLSession(configuration: .ephemeral)

        let secret: String

        /// `secret` is given as FULCRUM_ADMIN_TOKEN (empty: none) and used for requests.
        init(config: String?, store: String, adminPort: Int, secret: String = StoreCommandLineTests.secret, arguments: [String] = []) throws {
            self.adminPort = adminPort
            self.secret = secret
            process.executableURL = CommandLineTests.binary
            // an instance of a PostgreSQL store keeps its copy in a temporary file, not in the working directory
            let copy = store.hasPrefix("postgres") && !arguments.contains("--last-known-good")
                ? ["--last-known-good", NSTemporaryDirectory() + "fulcrum-lkg-\(UUID().uuidString).json"] : []
            process.arguments = ["serve", "--store", store, "--admin", "127.0.0.1:\(adminPort)", "--log-level", "notice"] + (config.map { ["-c", $0] } ?? [])
                + arguments + copy
            process.environment = ProcessInfo.processInfo.environment.merging(["FULCRUM_ADMIN_TOKEN": secret]) { $1 }
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        /// Waits until the admin API answers.
        func ready() async throws {
            for _ in 0..<300 {
                if (try? await request("GET", "/api/v1/health").status) == 200 { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw CancellationError()
        }

        func request(_ method: String, _ path: String, body: String? = nil, ifMatch: String = "*") async throws -> (status: Int, json: ConfigDocument?, text: String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(adminPort)\(path)")!)
            request.httpMethod = method
            request.timeoutInterval = 15
            request.setValue("Bearer \(secret)", forHTTPHeaderField: "Authorization")
            request.setValue(ifMatch, forHTTPHeaderField: "If-Match")
            if let body {
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await session.data(for: request)
            let text = String(decoding: data, as: UTF8.self)
            return ((response as! HTTPURLResponse).statusCode, try? JSONDocumentReader.parse(text), text)
        }

        private var logged: [UInt8] = []

        /// What the process has logged so far (without waiting for more).
        func logSoFar() -> String {
            let descriptor = errors.fileHandleForReading.fileDescriptor
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while case let count = read(descriptor, &chunk, chunk.count), count > 0 { logged += chunk[0..<count] }
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
            return String(decoding: logged, as: UTF8.self)
        }

        /// Signals the process and returns what it logged, waiting on a thread of its own.
        func stop(signal: Int32 = SIGTERM) async -> String {
            if process.isRunning { kill(process.processIdentifier, signal) }
            let process = self.process
            let errors = self.errors
            let earlier = String(decoding: logged, as: UTF8.self)
            return earlier + (await withCheckedContinuation { continuation in
                Thread.detachNewThread {
                    process.waitUntilExit()
                    continuation.resume(returning: String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
                }
            })
        }
    }

    static func config(weight: Int) -> String {
        """
        listen: [{ address: 127.0.0.1, port: 0 }]
        access_log: false
        services:
          web:
            nodes: [{ name: a, host: 127.0.0.1, port: 9, weight: \(weight) }]
        default: { service: web }
        """
    }

    static func temporaryStore() -> String {
        NSTemporaryDirectory() + "fulcrum-\(UUID().uuidString).db"
    }

    /// A port below Linux's ephemeral range (32768 and up), so that no outgoing connection holds it.
    static func adminPort() -> Int { Int.random(in: 20_000..<32_000) }

    /// A configuration file: a data plane on `port` in front of `backend` (service web, node a).
    static func configFile(port: Int, backend: LineBackend) throws -> String {
        try CommandLineTests.write("""
            listen: [{ address: 127.0.0.1, port: \(port) }]
            access_log: false
            services: { web: { nodes: [{ name: a, host: 127.0.0.1, port: \(backend.port) }] } }
            default: { service: web }
            """)
    }

    /// A GET through the data plane on `port` with curl; the body ("" when it failed).
    static func proxied(port: Int) async throws -> String {
        try await CommandLineTests.run(["--silent", "--max-time", "5", "http://127.0.0.1:\(port)/"], program: URL(fileURLWithPath: "/usr/bin/curl")).stdout
    }

    @Test func instancesSharingAPostgreSQLStoreApplyAChangeMadeThroughEitherOfThem() async throws {
        let database = try PostgresServer.shared().createDatabase()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file) }
        let first = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await first.ready()
        // the second starts from the store alone: the file was imported by the first
        let second = try Server(config: nil, store: database.url, adminPort: Self.adminPort())
        try await second.ready()
        #expect(try await second.request("GET", "/api/v1/config").json?.value(at: ["number"]) == .int(1))

        let changed = try await first.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 5}"#)
        #expect(changed.status == 200 && changed.json?.value(at: ["version", "number"]) == .int(2), "\(String(describing: changed.json))")
        var seen: ConfigDocument?
        for _ in 0..<200 {
            seen = try await second.request("GET", "/api/v1/config").json
            if seen?.value(at: ["number"]) == .int(2) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(seen?.value(at: ["config", "services", "web", "nodes"])?.items.first?["weight"] == .int(5), "\(String(describing: seen))")
        // and back: a change through the second reaches the first; both see one history
        #expect(try await second.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 7}"#).status == 200)
        for _ in 0..<200 where try await first.request("GET", "/api/v1/config").json?.value(at: ["number"]) != .int(3) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await first.request("GET", "/api/v1/config").json?.value(at: ["number"]) == .int(3))
        // two operators, one through each instance, both editing version 3: exactly one wins
        async let fromFirst = first.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 8}"#, ifMatch: "\"3\"")
        async let fromSecond = second.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 9}"#, ifMatch: "\"3\"")
        let statuses = try await [fromFirst.status, fromSecond.status].sorted()
        #expect(statuses == [200, 412], "\(statuses)")
        for server in [first, second] {  // both at version 4 again before the view is read
            for _ in 0..<200 where try await server.request("GET", "/api/v1/config").json?.value(at: ["number"]) != .int(4) {
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        // the instances view: both report, in sync with the store (the one that made the change
        // reports it with its next heartbeat)
        var instances: [ConfigDocument] = []
        for _ in 0..<300 {
            instances = try await second.request("GET", "/api/v1/instances").json?["items"]?.items ?? []
            if instances.count == 2, instances.allSatisfy({ $0["applied_version"] == .int(4) }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(instances.count == 2 && Set(instances.compactMap { $0["id"]?.stringValue }).count == 2, "\(instances)")
        #expect(instances.allSatisfy { $0["state"] == .string("in_sync") && $0["applied_version"] == .int(4) }, "\(instances)")

        // a version no instance can apply (committed behind their back: a CA file that does not
        // exist): each keeps serving version 4 and reports why, once, as failing
        let server = try PostgresServer.shared()
        let broken = try server.execute("""
            INSERT INTO config_version SELECT 5, created_at, 'tamper', 'api', 'unusable', 4,
                jsonb_set(document::jsonb, '{services,web,nodes,0,tls}', '{"ca_file": "/nonexistent/ca.pem"}')::text
                FROM config_version WHERE number = 4;
            UPDATE active_version SET number = 5;
            SELECT pg_notify('fulcrum_config', '5');
            """, in: database.configuration.database ?? "")
        #expect(broken.succeeded, "\(broken.output)")
        var failing: [ConfigDocument] = []
        for _ in 0..<200 {
            failing = try await first.request("GET", "/api/v1/instances").json?["items"]?.items ?? []
            if failing.count == 2, failing.allSatisfy({ $0["state"] == .string("failing") }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(failing.count == 2 && failing.allSatisfy { $0["state"] == .string("failing") && $0["applied_version"] == .int(4) }, "\(failing)")
        #expect(failing.first?["last_error"]?.stringValue?.contains("services.web.nodes[0].tls.ca_file") == true, "\(failing)")
        #expect(try await first.request("GET", "/api/v1/config").json?.value(at: ["number"]) == .int(4))
        // each instance's applied version, as the metric gives it
        let applied = try await first.request("GET", "/metrics").text.split(separator: "\n")
            .filter { $0.hasPrefix("fulcrum_instance_applied_version{") }
        #expect(applied.count == 2 && applied.allSatisfy { $0.hasSuffix(" 4") }, "\(applied)")

        let history = try await CommandLineTests.run(["config", "history", "--store", database.url])
        #expect(history.status == 0 && history.stdout.split(separator: "\n").count == 5, "\(history.stdout)\(history.stderr)")
        let verified = try await CommandLineTests.run(["audit", "verify", "--store", database.url])
        #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout)")
        let firstLog = await first.stop()
        let secondLog = await second.stop()
        #expect(secondLog.contains("activated version 2 committed by another process"), "\(secondLog)")
        #expect(firstLog.contains("activated version 3 committed by another process"), "\(firstLog)")
        #expect(firstLog.components(separatedBy: "cannot apply the store's active version").count == 2, "said once: \(firstLog)")
    }

    @Test func aStoreOutageLeavesTrafficAloneRefusesChangesWith503AndEndsWhenTheDatabaseIsBack() async throws {
        let postgres = try PostgresServer.dedicated()
        let database = try postgres.createDatabase()
        let backend = try await LineBackend.start(name: "through-outage")
        let port = Int.random(in: 20_000..<32_000)
        let file = try Self.configFile(port: port, backend: backend)
        defer { CommandLineTests.remove(file) }
        let server = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await server.ready()
        #expect(try await Self.proxied(port: port) == "through-outage")

        try postgres.stop()
        for _ in 0..<20 { #expect(try await Self.proxied(port: port) == "through-outage", "the request path never reads the store") }
        let config = try await server.request("GET", "/api/v1/config")
        #expect(config.json?.value(at: ["number"]) == .int(1), "answered from memory: \(config.status) \(String(describing: config.json))")
        let refused = try await server.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 3}"#)
        #expect(refused.status == 503 && refused.json?.value(at: ["error", "code"]) == .string("store_unavailable"), "\(String(describing: refused.json))")
        #expect(try await server.request("GET", "/api/v1/versions").status == 503)

        try postgres.start()
        var status = 0
        for _ in 0..<100 {
            status = try await server.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 3}"#).status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200, "changes work again once the database is back")
        #expect(try await Self.proxied(port: port) == "through-outage")
        _ = await server.stop()
        await backend.stop()
        try? postgres.stop()
    }

    @Test func anInstanceStartsFromItsLastKnownGoodCopyWhileTheStoreIsDownAndFollowsItOnceItIsBack() async throws {
        let postgres = try PostgresServer.dedicated()
        let database = try postgres.createDatabase()
        let backend = try await LineBackend.start(name: "from-the-copy")
        let port = Int.random(in: 20_000..<32_000)
        let file = try Self.configFile(port: port, backend: backend)
        let copy = NSTemporaryDirectory() + "fulcrum-lkg-\(UUID().uuidString).json"
        defer {
            CommandLineTests.remove(file)
            CommandLineTests.remove(copy)
        }
        let first = try Server(config: file, store: database.url, adminPort: Self.adminPort(), arguments: ["--last-known-good", copy])
        try await first.ready()
        #expect(try await first.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 5}"#).status == 200)
        _ = await first.stop()
        #expect(try LastKnownGood.read(from: copy).version.number == 2, "every version applied is copied")
        #expect(try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? Int == 0o600)

        try postgres.stop()
        let second = try Server(config: nil, store: database.url, adminPort: Self.adminPort(), arguments: ["--last-known-good", copy])
        var answer = ""
        for _ in 0..<100 {
            answer = try await Self.proxied(port: port)
            if answer == "from-the-copy" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(answer == "from-the-copy", "traffic is served from the copy while the store is down")

        try postgres.start()
        var number: ConfigDocument?
        for _ in 0..<100 {
            number = try? await second.request("GET", "/api/v1/config").json?.value(at: ["number"])
            if number == .int(2) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(number == .int(2))
        var status = 0
        for _ in 0..<100 {
            status = try await second.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 6}"#).status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200, "the instance follows the store once it is back")
        let log = await second.stop()
        #expect(log.contains("running on a last-known-good copy") && log.contains("version=2"), "\(log)")
        #expect(try LastKnownGood.read(from: copy).version.number == 3)
        await backend.stop()
        try? postgres.stop()
    }

    @Test func oneInstanceLeadsRolloutsAndAnotherTakesOverWhenItIsKilled() async throws {
        let database = try PostgresServer.shared().createDatabase()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file) }
        let first = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await first.ready()
        try await Task.sleep(for: .milliseconds(500))  // the first takes the lead
        let second = try Server(config: nil, store: database.url, adminPort: Self.adminPort())
        try await second.ready()
        try await Task.sleep(for: .seconds(3))  // a try or two of the second's, refused
        #expect(!second.logSoFar().contains("leading rollouts"), "only one instance leads: \(second.logSoFar())")
        // killed: no hand-over, its lead runs out
        let firstLog = await first.stop(signal: SIGKILL)
        #expect(firstLog.contains("leading rollouts for the fleet"), "\(firstLog)")
        var taken = false
        for _ in 0..<150 where !taken {  // once the killed leader's term (6 s) has run out
            try await Task.sleep(for: .milliseconds(100))
            taken = second.logSoFar().contains("leading rollouts for the fleet")
        }
        #expect(taken, "the second takes the lead over once the first has stopped")
        _ = await second.stop()
    }

    @Test func theRolloutLeaderJudgesTheCanaryOnTheFleetsTrafficNotOnlyItsOwn() async throws {
        let database = try PostgresServer.shared().createDatabase()
        let stable = try await LineBackend.start(name: "stable")
        let brokenCanary = boundLoopbackPort().port  // refuses connections: every canary request is a 502
        let file = try CommandLineTests.write("""
            listen: [{ address: 127.0.0.1, port: 0 }]
            access_log: false
            services:
              web: { nodes: [{ name: a, host: 127.0.0.1, port: \(stable.port) }] }
              v2: { nodes: [{ name: b, host: 127.0.0.1, port: \(brokenCanary) }] }
            routes:
              - name: api
                match: { path_prefix: / }
                split:
                  targets: [{ service: web, weight: 100 }, { name: canary, service: v2, weight: 0 }]
                  rollout: { canary: canary, steps: [50, 100], step_time: 1s, guard: { min_requests: 20, max_error_ratio: 0.1 } }
            """)
        defer { CommandLineTests.remove(file) }
        let leader = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await leader.ready()
        try await Task.sleep(for: .milliseconds(500))  // the first instance leads rollouts
        let other = try Server(config: nil, store: database.url, adminPort: Self.adminPort())
        try await other.ready()
        // the other instance's data plane (both listen on a port of their own), from the instances view
        var otherPort: Int?
        for _ in 0..<100 where otherPort == nil {
            let instances = try await other.request("GET", "/api/v1/instances").json?["items"]?.items ?? []
            let addresses = instances.compactMap(\.["listen"]).map(\.items).map { $0.compactMap(\.stringValue) }
            if addresses.count == 2 {
                let mine = leader.logSoFar()
                otherPort = addresses.flatMap { $0 }.compactMap { Int($0.split(separator: ":").last ?? "") }
                    .first { !mine.contains("127.0.0.1:\($0)") }
            }
            if otherPort == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let port = try #require(otherPort)
        // traffic only through the instance that does not lead: the leader sees none of its own
        var paused = false
        for _ in 0..<400 where !paused {
            _ = try await Self.proxied(port: port)
            paused = try await leader.request("GET", "/api/v1/routes/api").json?.value(at: ["split", "rollout", "paused"]) == .bool(true)
        }
        #expect(paused, "the leader rolled the canary back on the 502s the other instance served")
        let history = try await CommandLineTests.run(["config", "history", "--store", database.url])
        #expect(history.stdout.contains("rolled back to 0 %"), "\(history.stdout)")
        _ = await other.stop()
        let leaderLog = await leader.stop()
        #expect(leaderLog.contains("leading rollouts for the fleet"))
        await stable.stop()
    }

    @Test func anInstanceWhoseConnectionsWereCutCatchesUpWithAChangeMadeMeanwhile() async throws {
        let server = try PostgresServer.shared()
        let database = try server.createDatabase()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file) }
        let first = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await first.ready()
        let second = try Server(config: nil, store: database.url, adminPort: Self.adminPort())
        try await second.ready()
        try await Task.sleep(for: .milliseconds(500))  // both listen for notifications
        // every connection of both instances is cut (their LISTEN too); the second writes at once,
        // so its notification can reach nobody who listens: the first must find the change itself
        let cut = try server.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            in: database.configuration.database ?? "")
        #expect(cut.succeeded && (Int(cut.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 2, "\(cut.output)")
        var status = 0
        for _ in 0..<100 where status != 200 {
            status = try await second.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": 4}"#).status
            if status != 200 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(status == 200)
        var seen: ConfigDocument?
        for _ in 0..<200 where seen != .int(2) {
            seen = try? await first.request("GET", "/api/v1/config").json?.value(at: ["number"])
            if seen != .int(2) { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(seen == .int(2), "the first instance caught up after its connections were cut")
        let log = await first.stop()
        _ = await second.stop()
        #expect(log.contains("activated version 2 committed by another process"), "\(log)")
    }

    @Test func anInstanceKilledDuringWritesToPostgreSQLLosesNoAcknowledgedVersion() async throws {
        let database = try PostgresServer.shared().createDatabase()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file) }
        let server = try Server(config: file, store: database.url, adminPort: Self.adminPort())
        try await server.ready()
        let killer = Task {
            try await Task.sleep(for: .milliseconds(600))
            kill(server.process.processIdentifier, SIGKILL)
        }
        var acknowledged: [Int] = []
        for weight in 2..<400 {
            guard let reply = try? await server.request("PATCH", "/api/v1/services/web/nodes/a", body: #"{"weight": \#(weight)}"#),
                reply.status == 200, let number = reply.json?.value(at: ["version", "number"])?.intValue
            else { break }
            acknowledged.append(number)
        }
        try await killer.value
        _ = await server.stop()
        #expect(acknowledged.count > 3, "some writes were acknowledged before the kill")
        let history = try await CommandLineTests.run(["config", "history", "--store", database.url, "--limit", "1000"])
        let stored = Set(history.stdout.split(separator: "\n").compactMap { Int($0.split(separator: "\t").first?.trimmingCharacters(in: CharacterSet(charactersIn: "* ")) ?? "") })
        #expect(Set(acknowledged).isSubset(of: stored), "acknowledged \(acknowledged), stored \(stored.sorted())")
        let verified = try await CommandLineTests.run(["audit", "verify", "--store", database.url])
        #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout)")
    }

    @Test func firstStartImportsTheFileAndPrintsATokenOnceLaterStartsServeTheStore() async throws {
        let store = Self.temporaryStore()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file); CommandLineTests.remove(store) }
        let first = try Server(config: file, store: store, adminPort: Self.adminPort(), secret: "")
        try await first.ready()
        let log = await first.stop()
        #expect(log.contains("imported the configuration file as version 1"))
        #expect(log.contains("Created the admin token 'admin'"))
        let printed = log.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("fulcrum_") }
        let secret = try #require(printed).trimmingCharacters(in: .whitespaces)

        // The file changes, the store wins; the token printed on first start still works.
        try Self.config(weight: 7).write(toFile: file, atomically: true, encoding: .utf8)
        let second = try Server(config: file, store: store, adminPort: Self.adminPort(), secret: secret)
        try await second.ready()
        let active = try await second.request("GET", "/api/v1/config")
        #expect(active.status == 200)
        #expect(active.json?.value(at: ["number"]) == .int(1))
        #expect(active.json?.value(at: ["config", "services", "web"])?["nodes"]?.items.first?["weight"] == .int(1))

        // SIGHUP imports the file as a new version.
        kill(second.process.processIdentifier, SIGHUP)
        var number: ConfigDocument?
        for _ in 0..<100 {
            number = try await second.request("GET", "/api/v1/config").json?["number"]
            if number == .int(2) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(number == .int(2))
        let secondLog = await second.stop()
        #expect(!secondLog.contains("Created the admin token"))
        // the store refresher ends with the stop; it used to refresh once more and log an error
        #expect(!log.contains("error") && !secondLog.contains("error"), "\(secondLog)")

        let history = try await CommandLineTests.run(["config", "history", "--store", store])
        #expect(history.stdout.contains("* 2\t") && history.stdout.contains("file\tfile\treloaded from"))
        let exported = try await CommandLineTests.run(["config", "export", "--store", store])
        #expect(try FulcrumConfig.parse(exported.stdout).services[0].nodes[0].weight == 7)
        let verified = try await CommandLineTests.run(["audit", "verify", "--store", store])
        #expect(verified.status == 0 && verified.stdout.contains("audit chain intact"))
    }

    @Test func tokenCommandsCreateListAndRevoke() async throws {
        let store = Self.temporaryStore()
        defer { CommandLineTests.remove(store) }
        _ = try SQLiteConfigStore(path: store)
        let created = try await CommandLineTests.run(["token", "create", "--store", store, "--name", "ci", "--role", "admin"])
        #expect(created.status == 0 && created.stdout.hasPrefix("fulcrum_"))
        #expect(try await CommandLineTests.run(["token", "create", "--store", store, "--name", "ci"]).status == 1)
        #expect(try await CommandLineTests.run(["token", "list", "--store", store]).stdout.hasPrefix("ci\tadmin\t"))
        #expect(try await CommandLineTests.run(["token", "revoke", "--store", store, "--name", "ci"]).status == 0)
        #expect(try await CommandLineTests.run(["token", "revoke", "--store", store, "--name", "ci"]).status == 1)
        #expect(try await CommandLineTests.run(["audit", "list", "--store", store]).stdout.contains("cli@-\ttoken revoke\ttokens/ci\tok"))
        #expect(try await CommandLineTests.run(["config", "export", "--store", "/nonexistent.db"]).status != 0)
    }

    /// kill -9 at random moments while changes and rollbacks are being made: every acknowledged
    /// version is on disk with the content that was acknowledged, nothing half-applied is active,
    /// the audit chain stays intact, and the next start serves the store's active version.
    @Test func killingTheServerDuringChangesLosesNoCommittedVersion() async throws {
        let store = Self.temporaryStore()
        let file = try CommandLineTests.write(Self.config(weight: 1))
        defer { CommandLineTests.remove(file); CommandLineTests.remove(store) }
        var acknowledged: [Int: Int] = [:]  // version → weight it set
        for round in 0..<8 {
            let server = try Server(config: file, store: store, adminPort: Self.adminPort())
            try await server.ready()
            let served = try await server.request("GET", "/api/v1/config").json?["number"]?.intValue
            let expectedActive = try await SQLiteConfigStore(path: store).activeVersion()?.number
            #expect(served == expectedActive, "round \(round): the restarted server serves the store's active version")
            let pid = server.process.processIdentifier
            let killer = Task {
                try await Task.sleep(for: .milliseconds(Int.random(in: 80...400)))
                kill(pid, SIGKILL)
            }
            var weight = round * 1000
            while server.process.isRunning {
                weight += 1
                let body = "{\"weight\": \(weight)}"
                let reply = weight % 5 == 0
                    ? try? await server.request("POST", "/api/v1/versions/1/rollback")
                    : try? await server.request("PATCH", "/api/v1/services/web/nodes/a", body: body)
                guard let reply, reply.status == 200, let number = reply.json?.value(at: ["version", "number"])?.intValue else { continue }
                acknowledged[number] = weight % 5 == 0 ? 1 : weight
            }
            _ = try await killer.value
            _ = await server.stop()
        }
        let opened = try SQLiteConfigStore(path: store)
        #expect(acknowledged.count > 20, "enough changes were acknowledged to make the test meaningful")
        for (number, weight) in acknowledged {
            let version = try #require(try await opened.version(number), "version \(number) was acknowledged")
            let stored = try FulcrumConfig.parse(document: version.document)
            #expect(stored.services[0].nodes[0].weight == weight, "version \(number)")
        }
        let versions = try await opened.versions(limit: 10_000, before: nil)
        #expect(versions.first?.active == true, "the newest version is the active one")
        #expect(versions.map(\.number) == Array((1...versions.count).reversed()), "versions are numbered without gaps")
        let verification = try await opened.verifyAuditChain()
        #expect(verification.isIntact, "\(verification)")
        let audited = Set(try await opened.auditEntries(AuditQuery(limit: 100_000)).compactMap(\.version))
        #expect(audited == Set(versions.map(\.number)), "every version has its audit entry")
    }
}
