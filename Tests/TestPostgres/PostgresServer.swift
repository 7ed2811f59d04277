import Foundation
import NIOConcurrencyHelpers
import PostgresNIO
import RealSockets

/// A real PostgreSQL server (Debian's `postgresql` package) for the tests of one process: made in
/// a temporary directory with `initdb` (run as the `postgres` user when the tests run as root,
/// which `initdb` refuses), started with `pg_ctl` on a free loopback port, trusting connections
/// from loopback, and shared by every test, each of which makes a database of its own. A watchdog
/// shell stops the server and removes its directory once the test process has gone, however it
/// ended: no system service is used and nothing is left running.
public final class PostgresServer: Sendable {
    public let port: Int
    public let directory: String
    private let bin: String
    private let asRoot: Bool

    private static let started = NIOLockedValueBox<Result<PostgresServer, any Error>?>(nil)

    /// The server of this process, started on first use.
    public static func shared() throws -> PostgresServer {
        try started.withLockedValue { started in
            if started == nil { started = Result { try PostgresServer() } }
            return try started!.get()
        }
    }

    /// A server of its own, for a test that stops and starts it (a database outage); stopped when
    /// the process has gone, like the shared one.
    public static func dedicated() throws -> PostgresServer {
        try PostgresServer()
    }

    /// Stops the server (fast shutdown: connections are closed), as an outage would.
    public func stop() throws {
        try asPostgres("pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
    }

    /// Starts the stopped server again on the same port.
    public func start() throws {
        let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try asPostgres("pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-o", options, "start"])
    }

    /// Runs one of PostgreSQL's tools as the `postgres` user when the tests run as root.
    private func asPostgres(_ tool: String, _ arguments: [String]) throws {
        if asRoot { try Self.spawn("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + arguments) } else {
            try Self.spawn("\(bin)/\(tool)", arguments)
        }
    }

    /// Why the server could not be made or started, with what the tool printed.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.compactMap(Int.init).max() else {
            throw Failure(description: "PostgreSQL is not installed: apt-get install postgresql")
        }
        let bin = "/usr/lib/postgresql/\(version)/bin"
        let directory = NSTemporaryDirectory() + "fulcrum-postgres-\(UUID().uuidString.prefix(8))"
        let asRoot = getuid() == 0
        self.bin = bin
        self.directory = directory
        self.asRoot = asRoot
        self.port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asRoot { try Self.spawn("/bin/chown", ["postgres:postgres", directory]) }
        try asPostgres("initdb", ["-D", "\(directory)/data", "-A", "trust", "-U", "fulcrum", "-E", "UTF8", "--no-sync"])
        try start()
        let stop = asRoot ? "/usr/sbin/runuser -u postgres -- \(bin)/pg_ctl" : "\(bin)/pg_ctl"
        // in a session of its own, so that it outlives a kill of the test process's group
        try Self.spawn("/usr/bin/setsid", [
            "-f", "/bin/sh", "-c",
            "while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done; \(stop) -D \(directory)/data -m immediate stop >/dev/null 2>&1; rm -rf \(directory)",
        ])
    }

    /// Makes a new, empty database and returns how to reach it.
    public func createDatabase() throws -> (configuration: PostgresClient.Configuration, url: String) {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try Self.spawn("\(bin)/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "fulcrum", "-d", "postgres", "-q", "-c", "CREATE DATABASE \(name)"])
        let configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "fulcrum", password: nil, database: name, tls: .disable)
        return (configuration, "postgres://fulcrum@127.0.0.1:\(port)/\(name)?sslmode=disable")
    }

    /// Runs `sql` in `database` with psql; returns whether it succeeded and what psql printed (rows
    /// only, columns separated by `|`).
    public func execute(_ sql: String, in database: String) throws -> (succeeded: Bool, output: String) {
        let result = try Self.spawn(
            "\(bin)/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "fulcrum", "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-t", "-A", "-c", sql],
            check: false)
        return (result.status == 0, result.output)
    }

    /// Runs `program` to its end with posix_spawn and waitpid, its output going to a file, and
    /// returns its exit status and output. Not Foundation's `Process`: it learns of a child's end
    /// through a descriptor the child inherits, and a server that `pg_ctl` leaves running keeps
    /// that descriptor open, so `waitUntilExit` would never return.
    @discardableResult
    static func spawn(_ program: String, _ arguments: [String], check: Bool = true) throws -> (status: Int32, output: String) {
        let outputFile = NSTemporaryDirectory() + "fulcrum-postgres-\(UUID().uuidString).out"
        defer { unlink(outputFile) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(program): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let output = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        if check, exitStatus != 0 {
            throw Failure(description: "\(program) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return (exitStatus, output)
    }

    /// A port nothing listens on now, for the server to take.
    private static func freePort() throws -> Int {
        let (descriptor, port) = boundLoopbackPort()
        close(descriptor)
        return port
    }
}
