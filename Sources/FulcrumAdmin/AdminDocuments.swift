import Foundation
import FulcrumCore
import FulcrumTLS
import FulcrumProxy
import FulcrumStore

/// How store records and data-plane state look in API responses.
enum AdminDocuments {
    /// A certificate a listener serves (or a stored one, with no listener while no TLS listener
    /// serves it), as operators need to see it: where it comes from, what it is for, who issued
    /// it, when it ends (in how many whole days from `now`, and whether that is within the
    /// warning period or past), and its SHA-256 fingerprint. The private key is not part of
    /// ``ServedCertificate``'s public face and never of this document.
    static func certificate(_ certificate: ServedCertificate, listener: String?, now: Int64) -> ConfigDocument {
        // whole days counted as the expiry warnings of the log and `fulcrum check` count them
        let secondsLeft = certificate.notAfter - now
        let (source, file, storedName): (String, ConfigDocument, ConfigDocument) = switch certificate.source {
        case .file(let path): ("file", .string(path), .null)
        case .stored(let name): ("stored", .null, .string(name))
        }
        return .mapping([
            .init("listener", listener.map(ConfigDocument.string) ?? .null), .init("source", .string(source)),
            .init("file", file), .init("stored_name", storedName),
            .init("names", .list(certificate.names.map(ConfigDocument.string))),
            .init("subject", .string(certificate.subject)), .init("issuer", .string(certificate.issuer)),
            .init("not_after", timestamp(Date(timeIntervalSince1970: Double(certificate.notAfter)))),
            .init("days_left", .int(Int(secondsLeft / 86_400))), .init("state", .string(ListenerCertificates.ExpiryState(secondsLeft: secondsLeft).rawValue)),
            .init("fingerprint", .string(certificate.fingerprint)),
        ])
    }

    /// An instance of the fleet and its state.
    static func instance(_ report: InstanceReport, state: InstanceState) -> ConfigDocument {
        .mapping([
            .init("id", .string(report.id)), .init("host_name", .string(report.hostName)),
            .init("listen", .list(report.listen.map(ConfigDocument.string))), .init("fulcrum_version", .string(report.fulcrumVersion)),
            .init("started_at", timestamp(report.startedAt)), .init("applied_version", .int(report.appliedVersion)),
            .init("last_error", report.lastError.map(ConfigDocument.string) ?? .null), .init("heartbeat_at", timestamp(report.heartbeatAt)),
            .init("state", .string(state.rawValue)),
        ])
    }

    static func timestamp(_ date: Date) -> ConfigDocument {
        .string(formatter().string(from: date))
    }

    /// Reads an RFC 3339 time, with or without fractional seconds.
    static func parseTimestamp(_ text: String) -> Date? {
        let withFraction = formatter()
        if let date = withFraction.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        return plain.date(from: text)
    }

    private static func formatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }

    static func summary(_ version: ConfigVersion.Summary) -> ConfigDocument {
        .mapping([
            .init("number", .int(version.number)), .init("created_at", timestamp(version.createdAt)),
            .init("actor", .string(version.actor)), .init("source", .string(version.source.rawValue)),
            .init("message", .string(version.message)), .init("based_on", version.basedOn.map(ConfigDocument.int) ?? .null),
            .init("active", .bool(version.active)),
        ])
    }

    static func version(_ version: ConfigVersion, active: Bool) -> ConfigDocument {
        var document = summary(version.summary(active: active))
        document["config"] = version.document
        return document
    }

    static func change(_ change: DocumentChange) -> ConfigDocument {
        .mapping([.init("path", .string(change.path)), .init("before", change.before ?? .null), .init("after", change.after ?? .null)])
    }

    static func audit(_ entry: AuditEntry) -> ConfigDocument {
        .mapping([
            .init("sequence", .int(entry.sequence)), .init("time", timestamp(entry.record.time)),
            .init("actor", .string(entry.record.actor)), .init("client", .string(entry.record.client)),
            .init("operation", .string(entry.record.operation)), .init("target", .string(entry.record.target)),
            .init("result", .string(entry.record.result)), .init("detail", .string(entry.record.detail)),
            .init("version", entry.version.map(ConfigDocument.int) ?? .null), .init("hash", .string(entry.hash)),
        ])
    }

    /// A decimal number with at most three decimals.
    static func decimal(_ value: Double) -> ConfigDocument {
        .number(String(format: "%.3f", value))
    }

    static func milliseconds(_ micros: Double?) -> ConfigDocument {
        micros.map { decimal($0 / 1000) } ?? .null
    }

    static func byClass(_ counts: [some BinaryInteger]) -> ConfigDocument {
        .mapping(counts.enumerated().map { .init("\($0 + 1)xx", .number(String($1))) })
    }

    /// One route's, service's or node's traffic.
    static func traffic(_ entry: TrafficReport.Entry, series: Bool) -> ConfigDocument {
        let snapshot = entry.traffic
        let window = snapshot.windowSummary
        var document = ConfigDocument.mapping([.init("name", .string(entry.name))])
        if let service = entry.service {
            document["service"] = .string(service)
            document["connect_errors"] = .number(String(entry.connectErrors))
        }
        document["total"] = .mapping([
            .init("requests", .number(String(snapshot.totals.requestCount))), .init("by_class", byClass(snapshot.totals.requests)),
            .init("request_bytes", .number(String(snapshot.totals.requestBytes))),
            .init("response_bytes", .number(String(snapshot.totals.responseBytes))),
        ])
        document["window"] = .mapping([
            .init("requests", .int(window.total)), .init("rps", decimal(Double(window.total) / Double(max(snapshot.seconds, 1)))),
            .init("by_class", byClass(window.requests)), .init("error_ratio", decimal(window.errorRatio)),
            .init("p50_ms", milliseconds(window.p50Microseconds)), .init("p90_ms", milliseconds(window.p90Microseconds)),
            .init("p99_ms", milliseconds(window.p99Microseconds)),
        ])
        if series {
            document["series"] = .list(snapshot.perSecond.map { second in
                .mapping([
                    .init("requests", .int(second.total)), .init("errors", .int(second.requests[4])),
                    .init("p50_ms", milliseconds(second.p50Microseconds)), .init("p99_ms", milliseconds(second.p99Microseconds)),
                ])
            })
        }
        return document
    }

    static func token(_ token: StoredToken) -> ConfigDocument {
        .mapping([.init("name", .string(token.name)), .init("role", .string(token.role.rawValue)), .init("created_at", timestamp(token.createdAt))])
    }

    static func state(_ state: ProxyState) -> ConfigDocument {
        func limit(_ limit: ProxyState.LimitState?) -> ConfigDocument {
            guard let limit else { return .null }
            return .mapping([.init("rejected", .int(limit.rejected)), .init("tracked_keys", .int(limit.trackedKeys))])
        }
        return .mapping([
            .init("version", .int(state.generation)),
            .init("services", .list(state.services.map { service in
                .mapping([
                    .init("name", .string(service.name)),
                    .init("nodes", .list(service.nodes.map { node in
                        .mapping([
                            .init("name", .string(node.name)), .init("up", .bool(node.up)),
                            .init("ejected_for_seconds", node.ejectedFor.map { .number(String(format: "%.3f", $0)) } ?? .null),
                            .init("in_flight", .int(node.inFlight)),
                        ])
                    })),
                    .init("breakers", .list(service.breakers.map(ConfigDocument.string))),
                    .init("rate_limit", limit(service.rateLimit)),
                    .init("limited_in_flight", service.limitedInFlight.map(ConfigDocument.int) ?? .null),
                ])
            })),
            .init("routes", .list(state.routes.map { route in
                .mapping([
                    .init("name", .string(route.name)), .init("rate_limit", limit(route.rateLimit)),
                    .init("limited_in_flight", route.limitedInFlight.map(ConfigDocument.int) ?? .null),
                ])
            })),
            .init("access_rules", .list(state.accessRules.map { rule in
                .mapping([
                    .init("name", .string(rule.name)), .init("scope", .string(rule.scope)), .init("action", .string(rule.action)),
                    .init("hits", .int(rule.hits)),
                ])
            })),
            .init("cc", .list(state.cc.map { rule in
                .mapping([.init("name", .string(rule.name)), .init("bans", .int(rule.bans)), .init("refused", .int(rule.refused))])
            })),
            .init("bans", .list(state.bans.map { ban in
                .mapping([
                    .init("rule", .string(ban.rule)), .init("key", .string(ban.key)),
                    .init("seconds_left", .number(String(format: "%.1f", ban.secondsLeft))),
                ])
            })),
        ])
    }
}
