import Foundation
import Testing
import RealSockets

/// The `fulcrum` binary run as a user runs it: exit codes, output, signals.
@Suite(.realSockets) struct CommandLineTests {
    /// The binary built beside the test bundle.
    static let binary: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("fulcrum").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("fulcrum")
    }()

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `program` (the `fulcrum` binary unless told) to completion on a thread of its own, so
    /// that waiting for it does not hold one of the few threads Swift concurrency has (other
    /// suites run meanwhile).
    static func run(_ arguments: [String], program: URL = binary) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try runBlocking(arguments, program: program) }) }
        }
    }

    private static func runBlocking(_ arguments: [String], program: URL) throws -> Output {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardInput = FileHandle.nullDevice  // openssl s_client waits for input otherwise
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Writes `text` to a new file in the temporary directory; the caller removes it (``remove(_:)``).
    static func write(_ text: String, name: String = UUID().uuidString + ".yaml") throws -> String {
        let path = NSTemporaryDirectory() + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `fulcrum serve -c path` in the background, its log (stderr) going to the returned
    /// pipe; the caller ends it.
    static func serve(_ path: String) throws -> (process: Process, log: Pipe) {
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "-c", path]
        let log = Pipe()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, log)
    }

    /// Removes a file made by ``write(_:name:)`` or a store made by a test, with SQLite's side files.
    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static let valid = """
        listen: [{ address: 127.0.0.1, port: 0 }]
        services:
          users:
            nodes:
              - { name: users-a, host: 127.0.0.1, port: 9001, weight: 3 }
              - { name: users-b, host: 127.0.0.1, port: 9002, weight: 1 }
          search:
            strategy: hash
            hash_key: header:X-User
            nodes: [{ name: s1, host: 127.0.0.1, port: 9101 }, { name: s2, host: 127.0.0.1, port: 9102 }]
        routes:
          - { name: admin, match: { path_prefix: /api/admin/, methods: [POST] }, service: users }
          - { name: v1, match: { path_regex: '^/api/v[0-9]+/', cookies: { beta: "1" } }, service: users, node: users-b }
          - { name: search, match: { path_prefix: /search }, service: search }
        default: { service: users }
        """

    @Test func checkAcceptsAValidFileAndRejectsAnInvalidOneWithEveryError() async throws {
        let goodFile = try Self.write(Self.valid)
        defer { Self.remove(goodFile) }
        let good = try await Self.run(["check", "-c", goodFile])
        #expect(good.status == 0)
        #expect(good.stdout.contains("ok (1 listeners, 2 services, 4 nodes, 3 routes)"))

        let badFile = try Self.write("""
            listen: [{ port: 80 }]
            services:
              users:
                nodes: [{ name: a, host: 127.0.0.1, port: 99999, wieght: 1 }]
            routes:
              - { name: r, match: { path_regex: '(' }, service: nobody }
            """)
        defer { Self.remove(badFile) }
        let bad = try await Self.run(["check", "-c", badFile])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("invalid configuration (4 errors)"))
        #expect(bad.stdout.contains("services.users.nodes[0].port (line 4): 99999 is out of range 1...65535"))
        #expect(bad.stdout.contains("services.users.nodes[0].wieght (line 4): unknown field (did you mean 'weight'?)"))
        #expect(bad.stdout.contains("routes[0].match.path_regex (line 6): invalid regular expression"))
        #expect(bad.stdout.contains("routes[0].service (line 6): no service named 'nobody'"))

        let missing = try await Self.run(["check", "-c", "/nonexistent.yaml"])
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("cannot read /nonexistent.yaml"))
    }

    @Test func theDemoConfigurationIsValid() async throws {
        let printed = try await Self.run(["demo", "--print-config"])
        #expect(printed.status == 0)
        #expect(printed.stdout.contains("health_check"))
        let file = try Self.write(printed.stdout)
        defer { Self.remove(file) }
        let checked = try await Self.run(["check", "-c", file])
        #expect(checked.status == 0, "\(checked.stdout)")
        #expect(checked.stdout.contains("ok (1 listeners, 2 services, 4 nodes, 2 routes)"))
    }

    @Test func routeExplainsTheDecision() async throws {
        let path = try Self.write(Self.valid)
        defer { Self.remove(path) }
        let pinned = try await Self.run(["route", "-c", path, "GET", "/api/v2/items?x=1", "-H", "Cookie: beta=1"])
        #expect(pinned.status == 0)
        #expect(pinned.stdout.contains("admin [prefix] no: path does not match"))
        let method = try await Self.run(["route", "-c", path, "GET", "/api/admin/users"])
        #expect(method.stdout.contains("admin [prefix] no: method not accepted"))
        #expect(pinned.stdout.contains("v1 [regex] MATCH"))
        #expect(pinned.stdout.contains("search [prefix] no: path does not match"))
        #expect(pinned.stdout.contains("node: users-b (127.0.0.1:9002) (pinned by the route)"))

        let hashed = try await Self.run(["route", "-c", path, "GET", "/search?q=x", "-H", "X-User: alice"])
        #expect(hashed.stdout.contains("service: search (strategy hash)"))
        #expect(hashed.stdout.contains("(hash of header:X-User; the same key always gets this node)"))
        let again = try await Self.run(["route", "-c", path, "GET", "/search", "-H", "X-User: alice"])
        let node = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("node:") } }
        #expect(node(hashed.stdout) == node(again.stdout))

        let fallback = try await Self.run(["route", "-c", path, "GET", "/nowhere"])
        #expect(fallback.stdout.contains("route: default"))
        #expect(fallback.stdout.contains("node: chosen per request by round_robin over users-a=3, users-b=1"))
    }

    @Test func serveExplainsAListenerItCannotOpen() async throws {
        let occupant = try await LineBackend.start(name: "occupant")
        let path = try Self.write(
            "listen: [{ address: 127.0.0.1, port: \(occupant.port) }]\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }\n")
        defer { Self.remove(path) }
        let result = try await Self.run(["serve", "-c", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(occupant.port): Address already in use\n"), "\(result.stderr)")
        await occupant.stop()
    }

    @Test func serveRaisesTheOpenFileLimitToTheHardLimit() async throws {
        let port = Int.random(in: 20_000..<32_000)  // below the ephemeral range, which outgoing connections use
        let path = try Self.write(
            "listen: [{ address: 127.0.0.1, port: \(port) }]\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }\ndefault: { service: s }\n")
        defer { Self.remove(path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -Sn 256 && exec \"$0\" serve -c \"$1\"", Self.binary.path, path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        _ = try await LineBackend.get(port: port, retries: 100)  // serving (a 502: the node is not there)
        let limits = try String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        try #require(numbers.count == 2, "\(line)")
        #expect(numbers[1] > 256, "the hard limit leaves nothing to raise")
        #expect(numbers[0] == numbers[1], "the soft limit stayed at \(numbers[0])")
        process.terminate()
        process.waitUntilExit()
    }

    @Test func serveReloadsOnSIGHUPKeepsTheOldConfigOnABadFileAndDrainsOnSIGTERM() async throws {
        let backendA = try await LineBackend.start(name: "cli-a")
        let backendB = try await LineBackend.start(name: "cli-b")
        let port = Int.random(in: 20_000..<32_000)  // below the ephemeral range, which outgoing connections use
        func config(_ backend: LineBackend) -> String {
            "listen: [{ address: 127.0.0.1, port: \(port) }]\naccess_log: true\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: \(backend.port) }] } }\ndefault: { service: s }\n"
        }
        let path = try Self.write(config(backendA))
        defer { Self.remove(path) }
        let (process, err) = try Self.serve(path)
        defer { if process.isRunning { process.terminate() } }

        #expect(try await LineBackend.get(port: port, retries: 100) == "cli-a")
        try config(backendB).write(toFile: path, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        var seen = ""
        for _ in 0..<100 {
            seen = (try? await LineBackend.get(port: port)) ?? ""
            if seen == "cli-b" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen == "cli-b")

        try "listen: [{ port: nope }]".write(toFile: path, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await LineBackend.get(port: port) == "cli-b", "the running configuration keeps serving")
        try config(backendB).write(toFile: path, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)  // the active version again: nothing to swap in
        try await Task.sleep(for: .milliseconds(300))

        kill(process.processIdentifier, SIGUSR1)
        try await Task.sleep(for: .milliseconds(200))
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("configuration reloaded") && log.contains("version=2"))
        #expect(log.contains("configuration file unchanged from the active version"), "reloads go through the configuration controller")
        #expect(log.contains("configuration rejected, the running one keeps serving"))
        #expect(log.contains("listen[0].port (line 1): expected a whole number"))
        #expect(log.contains("\"GET /\" 200"), "access log lines are written")
        #expect(log.contains("stopped"))
        #expect(log.contains("health summary\ns/n up"), "SIGUSR1 logs every node's health")
        await backendA.stop()
        await backendB.stop()
    }

    /// SIGHUP and SIGUSR1 end a process by default: sent in the first milliseconds, before the
    /// signal loop handled them, they killed Fulcrum (exit 129 for SIGHUP, 6 times of 6 at 5 ms).
    @Test(arguments: [SIGHUP, SIGUSR1])
    func aSignalInTheFirstMillisecondsDoesNotKill(_ sig: Int32) async throws {
        let port = Int.random(in: 20_000..<32_000)
        let path = try Self.write(
            "listen: [{ address: 127.0.0.1, port: \(port) }]\nservices: { s: { nodes: [{ name: n, host: 127.0.0.1, port: 9 }] } }\ndefault: { service: s }\n")
        defer { Self.remove(path) }
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "-c", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        for _ in 0..<5 {
            kill(process.processIdentifier, sig)
            try await Task.sleep(for: .milliseconds(2))
        }
        _ = try await LineBackend.get(port: port, retries: 100)  // serving (a 502: the node is not there)
        #expect(process.isRunning, "the signal killed the process (status \(process.isRunning ? 0 : process.terminationStatus))")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
