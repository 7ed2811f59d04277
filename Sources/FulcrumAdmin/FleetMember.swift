import Foundation
import FulcrumCore
import FulcrumStore
import Logging

/// This process as a member of the fleet that shares its store: it reports itself every
/// ``InstanceState/heartbeatInterval`` (and at once after each attempt to follow the store), with
/// the version it serves and why it could not apply the active one, if it could not.
public actor FleetMember {
    public nonisolated let id: String
    private let store: any ConfigStore
    private let controller: ConfigController
    private let hostName: String
    private let listen: [String]
    private let startedAt = Date()
    private let logger: Logger
    private var lastError: String?
    private var heartbeatFailing = false

    public init(store: any ConfigStore, controller: ConfigController, listen: [String], logger: Logger) {
        self.id = UUID().uuidString.lowercased()
        self.store = store
        self.controller = controller
        self.hostName = ProcessInfo.processInfo.hostName
        self.listen = listen
        self.logger = logger
    }

    /// After an attempt to apply the store's active version: `error` is why it failed (the
    /// version served stays), `nil` when it succeeded or there was nothing new. Returns whether
    /// that differs from the last attempt (a new error is worth a log line; the same one again
    /// every 2 s is not).
    @discardableResult
    public func followed(error: (any Error)?) async -> Bool {
        let report = error.map { "\($0)" }
        guard report != lastError else { return false }
        lastError = report
        await beat()
        return true
    }

    /// Writes the heartbeat; a store that cannot be reached is logged once until it can again.
    public func beat() async {
        let report = InstanceReport(
            id: id, hostName: hostName, listen: listen, fulcrumVersion: FulcrumBuild.version, startedAt: startedAt,
            appliedVersion: await controller.active.number, lastError: lastError, heartbeatAt: Date())
        do {
            try await store.heartbeat(report)
            if heartbeatFailing { logger.notice("heartbeats reach the store again", metadata: ["store": "\(store.location)"]) }
            heartbeatFailing = false
        } catch {
            if !heartbeatFailing {
                logger.warning("cannot write the heartbeat to the store", metadata: ["store": "\(store.location)", "error": "\(error)"])
            }
            heartbeatFailing = true
        }
    }

    /// Heartbeats until cancelled.
    public func run() async {
        repeat { await beat() } while (try? await Task.sleep(for: InstanceState.heartbeatInterval)) != nil
    }
}
