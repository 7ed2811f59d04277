import FulcrumCore
import FulcrumProxy

/// Writes metrics in the Prometheus text exposition format (version 0.0.4).
struct PrometheusText {
    private(set) var text = ""

    /// Starts a metric family.
    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: some CustomStringConvertible) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    /// A histogram in seconds from latency buckets: the `le` bounds are the powers of two of
    /// microseconds from 256 µs to about 67 s, which are bucket bounds (so the counts are exact).
    mutating func histogram(_ name: String, _ labels: [(String, String)], totals: TrafficTotals) {
        var cumulative: Int64 = 0
        var bucket = 0
        for exponent in 8...26 {
            let bound = Double(1 << exponent)
            while bucket < LatencyBuckets.count - 1, LatencyBuckets.upperBound(bucket) <= bound {
                cumulative += bucket < totals.latencyBuckets.count ? totals.latencyBuckets[bucket] : 0
                bucket += 1
            }
            sample("\(name)_bucket", labels + [("le", Self.seconds(micros: bound))], cumulative)
        }
        sample("\(name)_bucket", labels + [("le", "+Inf")], totals.requestCount)
        sample("\(name)_sum", labels, Self.seconds(nanos: totals.latencySumNanoseconds))
        sample("\(name)_count", labels, totals.requestCount)
    }

    static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func seconds(micros: Double) -> String { String(micros / 1_000_000) }
    static func seconds(nanos: Int64) -> String { String(Double(nanos) / 1_000_000_000) }
}

extension AdminContext {
    /// Every metric of ``PrometheusText``: traffic, node health, breakers, limits, configuration.
    func metricsText() async -> String {
        let traffic = await proxy.traffic(seconds: 1)
        let state = await proxy.state()
        let version = await controller.active.number
        var out = PrometheusText()

        out.family("fulcrum_requests_total", "counter", "Responses sent to clients, by route (\(TrafficReport.defaultRoute), \(TrafficReport.unmatchedRoute)) and status class.")
        for entry in traffic.routes { classSamples(&out, "fulcrum_requests_total", [("route", entry.name)], entry.traffic.totals) }
        out.family("fulcrum_service_requests_total", "counter", "Responses sent to clients, by service and status class.")
        for entry in traffic.services { classSamples(&out, "fulcrum_service_requests_total", [("service", entry.name)], entry.traffic.totals) }
        out.family("fulcrum_node_requests_total", "counter", "Responses from exchanges with a node, by node and status class.")
        for entry in traffic.nodes {
            classSamples(&out, "fulcrum_node_requests_total", [("service", entry.service ?? ""), ("node", entry.name)], entry.traffic.totals)
        }
        out.family("fulcrum_request_duration_seconds", "histogram", "Time from the request head to the end of the response, by route.")
        for entry in traffic.routes { out.histogram("fulcrum_request_duration_seconds", [("route", entry.name)], totals: entry.traffic.totals) }
        out.family("fulcrum_node_request_duration_seconds", "histogram", "Time from the request head to the end of the response, by node.")
        for entry in traffic.nodes {
            out.histogram("fulcrum_node_request_duration_seconds", [("service", entry.service ?? ""), ("node", entry.name)], totals: entry.traffic.totals)
        }
        out.family("fulcrum_request_bytes_total", "counter", "Request body bytes received from clients, by route.")
        for entry in traffic.routes { out.sample("fulcrum_request_bytes_total", [("route", entry.name)], entry.traffic.totals.requestBytes) }
        out.family("fulcrum_response_bytes_total", "counter", "Response body bytes sent to clients, by route.")
        for entry in traffic.routes { out.sample("fulcrum_response_bytes_total", [("route", entry.name)], entry.traffic.totals.responseBytes) }
        out.family("fulcrum_upstream_connect_errors_total", "counter", "Failed connection attempts to a node.")
        for entry in traffic.nodes {
            out.sample("fulcrum_upstream_connect_errors_total", [("service", entry.service ?? ""), ("node", entry.name)], entry.connectErrors)
        }

        out.family("fulcrum_node_up", "gauge", "1 when the node passes its active health checks (or has none), 0 when they mark it down.")
        for service in state.services { for node in service.nodes { out.sample("fulcrum_node_up", [("service", service.name), ("node", node.name)], node.up ? 1 : 0) } }
        out.family("fulcrum_node_ejected", "gauge", "1 while passive health checking has ejected the node.")
        for service in state.services {
            for node in service.nodes { out.sample("fulcrum_node_ejected", [("service", service.name), ("node", node.name)], node.ejectedFor == nil ? 0 : 1) }
        }
        out.family("fulcrum_node_in_flight", "gauge", "Requests in flight to the node.")
        for service in state.services { for node in service.nodes { out.sample("fulcrum_node_in_flight", [("service", service.name), ("node", node.name)], node.inFlight) } }
        out.family("fulcrum_circuit_breakers", "gauge", "Event loops whose circuit breaker for the service is in each state.")
        for service in state.services where !service.breakers.isEmpty {
            for name in ["closed", "open", "half-open"] {
                out.sample("fulcrum_circuit_breakers", [("service", service.name), ("state", name)], service.breakers.filter { $0 == name }.count)
            }
        }
        out.family("fulcrum_rate_limit_rejections_total", "counter", "Requests refused with 429 by a rate limit since the configuration was applied.")
        for service in state.services { if let limit = service.rateLimit { out.sample("fulcrum_rate_limit_rejections_total", [("service", service.name)], limit.rejected) } }
        for route in state.routes { if let limit = route.rateLimit { out.sample("fulcrum_rate_limit_rejections_total", [("route", route.name)], limit.rejected) } }
        out.family("fulcrum_access_rule_hits_total", "counter", "Requests each access rule matched since the configuration was applied (action: allow, block or log).")
        for rule in state.accessRules { out.sample("fulcrum_access_rule_hits_total", [("rule", rule.name), ("action", rule.action)], rule.hits) }
        out.family("fulcrum_cc_bans_total", "counter", "Keys a CC rule banned since the configuration was applied.")
        for rule in state.cc { out.sample("fulcrum_cc_bans_total", [("rule", rule.name)], rule.bans) }
        out.family("fulcrum_cc_refused_total", "counter", "Requests refused because a CC rule had banned their key.")
        for rule in state.cc { out.sample("fulcrum_cc_refused_total", [("rule", rule.name)], rule.refused) }
        out.family("fulcrum_cc_banned_keys", "gauge", "Keys banned now, per CC rule.")
        for rule in state.cc { out.sample("fulcrum_cc_banned_keys", [("rule", rule.name)], state.bans.filter { $0.rule == rule.name }.count) }
        if let instances = try? await store.instances() {
            out.family("fulcrum_instance_applied_version", "gauge", "The configuration version each instance sharing the store serves, as it last reported.")
            for instance in instances {
                out.sample("fulcrum_instance_applied_version", [("instance", instance.id), ("host", instance.hostName)], Int64(instance.appliedVersion))
            }
        }
        out.family("fulcrum_certificate_expiry_timestamp_seconds", "gauge", "When each certificate a TLS listener serves expires (Unix time), by listener and first name.")
        for (listener, certificate) in proxy.servedCertificates() {
            out.sample("fulcrum_certificate_expiry_timestamp_seconds", [("listener", listener), ("name", certificate.names.first ?? certificate.subject)], certificate.notAfter)
        }
        out.family("fulcrum_config_version", "gauge", "The active configuration version.")
        out.sample("fulcrum_config_version", [], version)
        out.family("fulcrum_build_info", "gauge", "Always 1; the labels describe the build.")
        out.sample("fulcrum_build_info", [("version", FulcrumBuild.version)], 1)
        return out.text
    }

    private func classSamples(_ out: inout PrometheusText, _ name: String, _ labels: [(String, String)], _ totals: TrafficTotals) {
        for (index, count) in totals.requests.enumerated() where count > 0 {
            out.sample(name, labels + [("class", PrometheusText.statusClasses[index])], count)
        }
    }
}
