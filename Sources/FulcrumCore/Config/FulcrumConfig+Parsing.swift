extension FulcrumConfig {
    /// Parses and validates a YAML or JSON document.
    ///
    /// - Throws: ``ConfigError`` with every problem found (path, line, reason); nothing partial is returned.
    public static func parse(_ text: String) throws(ConfigError) -> FulcrumConfig {
        let (document, lines) = try ConfigDocument.parseWithLines(text)
        return try parse(document: document, lines: lines)
    }

    static func parse(document: ConfigDocument, lines: SourceLines) throws(ConfigError) -> FulcrumConfig {
        let reader = ConfigReader(lines: lines)
        let config = ConfigDocumentParser(reader: reader).parse(document)
        guard reader.issues.isEmpty, let config else {
            throw ConfigError(issues: reader.issues)
        }
        return config
    }
}

/// Interprets a ``ConfigDocument`` as a ``FulcrumConfig``: field by field, then the references between them.
struct ConfigDocumentParser {
    let reader: ConfigReader

    static let topLevelFields = [
        "listen", "workers", "max_connections", "max_connections_per_client", "timeouts", "access_log", "request_id_header", "drain_timeout",
        "encoded_slashes", "http2", "services", "routes", "default", "errors", "health_check_defaults", "stored_certificates",
        "access_rules", "cc", "trusted_proxies",
    ]

    func parse(_ root: ConfigDocument) -> FulcrumConfig? {
        guard let object = reader.object(root, "", allowed: Self.topLevelFields) else { return nil }
        var config = FulcrumConfig(listeners: [], services: [])

        if let node = object["stored_certificates"] {
            config.storedCertificates = storedCertificates(node, "stored_certificates")
        }
        if let node = object.require("listen") {
            config.listeners = listeners(node, object.path("listen"), stored: config.storedCertificates)
        }
        if let node = object["workers"] {
            config.workers = reader.int(node, "workers", in: 1...256)
        }
        if let node = object["max_connections"] {
            config.maxConnections = reader.int(node, "max_connections", in: 1...10_000_000)
        }
        if let node = object["max_connections_per_client"] {
            config.maxConnectionsPerClient = reader.int(node, "max_connections_per_client", in: 1...10_000_000)
        }
        if let node = object["timeouts"] {
            config.timeouts = timeouts(node, "timeouts")
        }
        if let node = object["access_log"], let value = reader.bool(node, "access_log") {
            config.accessLog = value
        }
        if let node = object["request_id_header"], let value = reader.string(node, "request_id_header") {
            if HTTPSyntax.isToken(value) { config.requestIDHeader = value } else {
                reader.fail("request_id_header", "'\(value)' is not a valid header name")
            }
        }
        if let node = object["drain_timeout"], let value = reader.duration(node, "drain_timeout") {
            config.drainTimeout = value
        }
        if let node = object["encoded_slashes"],
            let value = reader.oneOf(node, "encoded_slashes", RequestTarget.EncodedSlashes.allCases.map { ($0.rawValue, $0) })
        {
            config.encodedSlashes = value
        }
        if let node = object["http2"] {
            config.http2 = http2Limits(node, "http2")
        }
        var checkDefaults = ActiveHealthCheck()
        if let node = object["health_check_defaults"] {
            checkDefaults = healthCheck(node, "health_check_defaults", base: checkDefaults) ?? checkDefaults
        }
        if let node = object.require("services") {
            config.services = services(node, "services", checkDefaults: checkDefaults)
        }
        if let node = object["routes"] {
            config.routes = routes(node, "routes", services: config.services)
        }
        var ruleNames: [String: String] = [:]
        if let node = object["access_rules"] {
            config.accessRules = accessRules(node, "access_rules", names: &ruleNames)
        }
        for (index, service) in config.services.enumerated() {
            if let node = root["services"]?[service.name]?["access_rules"] {
                config.services[index].accessRules = accessRules(node, "services.\(service.name).access_rules", names: &ruleNames)
            }
        }
        if case .list(let items)? = object["routes"] {
            for (index, item) in items.enumerated() {
                guard let node = item["access_rules"], let name = item["name"]?.scalarText,
                    let routeIndex = config.routes.firstIndex(where: { $0.name == name })
                else { continue }
                config.routes[routeIndex].accessRules = accessRules(node, "routes[\(index)].access_rules", names: &ruleNames)
            }
        }
        if let node = object["cc"] {
            config.cc = ccRules(node, "cc")
        }
        if let node = object["trusted_proxies"] {
            config.trustedProxies = trustedProxies(node, "trusted_proxies")
        }
        if let node = object["default"] {
            config.defaultTarget = target(node, "default", services: config.services, allowed: ["service", "node"])
        }
        if let node = object["errors"] {
            config.errorPages = errorPages(node, "errors")
        }
        return config
    }

    // MARK: listeners and timeouts

    private func storedCertificates(_ node: ConfigDocument, _ path: String) -> [StoredCertificateReference] {
        var result: [StoredCertificateReference] = []
        for (name, value) in reader.namedEntries(node, path) {
            let entryPath = "\(path).\(name)"
            if !HTTPSyntax.isName(name) {
                reader.fail(entryPath, "certificate names may use letters, digits, '-', '_' and '.' only")
            }
            guard let object = reader.object(value, entryPath, allowed: ["chain_sha256"]),
                let digestNode = object.require("chain_sha256"), let digest = reader.string(digestNode, object.path("chain_sha256"))
            else { continue }
            guard digest.utf8.count == 64, digest.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                reader.fail(object.path("chain_sha256"), "'\(digest)' is not a SHA-256 digest (64 lowercase hex digits)")
                continue
            }
            result.append(StoredCertificateReference(name: name, chainSHA256: digest))
        }
        return result
    }

    private func listeners(_ node: ConfigDocument, _ path: String, stored: [StoredCertificateReference]) -> [Listener] {
        let items = reader.list(node, path)
        if items.isEmpty, case .list = node { reader.fail(path, "at least one listener is required") }
        var result: [Listener] = []
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let object = reader.object(item, itemPath, allowed: ["address", "port", "tls", "redirect_to_https", "h2c"]) else { continue }
            var listener = Listener(port: 0)
            if let address = object["address"] {
                if let value = reader.string(address, object.path("address")) {
                    if HTTPSyntax.isHost(value) { listener.address = value } else {
                        reader.fail(object.path("address"), "'\(value)' is not an IP address or host name")
                    }
                }
            }
            if let node = object["tls"] {
                listener.tls = listenerTLS(node, object.path("tls"), stored: stored)
            }
            if let node = object["redirect_to_https"] {
                listener.redirectToHTTPS = reader.int(node, object.path("redirect_to_https"), in: 1...65535)
                if object["tls"] != nil {
                    reader.fail(object.path("redirect_to_https"), "a listener with tls serves HTTPS itself; redirect from a plaintext listener")
                }
            }
            if let node = object["h2c"], let value = reader.bool(node, object.path("h2c")) {
                listener.h2c = value
                if value, object["tls"] != nil {
                    reader.fail(object.path("h2c"), "h2c is HTTP/2 without TLS; a tls listener offers HTTP/2 through tls.alpn")
                }
                if value, object["redirect_to_https"] != nil {
                    reader.fail(object.path("h2c"), "a listener with redirect_to_https only redirects")
                }
            }
            guard let portNode = object.require("port"),
                let port = reader.int(portNode, object.path("port"), in: 0...65535)
            else { continue }
            listener.port = port
            if !seen.insert("\(listener.address):\(port)").inserted {
                reader.fail(itemPath, "\(listener.address):\(port) is listed twice")
            }
            result.append(listener)
        }
        return result
    }

    /// `{ cert: PATH, key: PATH }`.
    private func certificateFiles(_ node: ConfigDocument, _ path: String) -> CertificateFiles? {
        guard let entry = reader.object(node, path, allowed: ["cert", "key"]),
            let certNode = entry.require("cert"), let cert = reader.string(certNode, entry.path("cert")),
            let keyNode = entry.require("key"), let key = reader.string(keyNode, entry.path("key"))
        else { return nil }
        return CertificateFiles(cert: cert, key: key)
    }

    private func listenerTLS(_ node: ConfigDocument, _ path: String, stored: [StoredCertificateReference]) -> ListenerTLS? {
        guard let object = reader.object(node, path, allowed: ["certificates", "default_certificate", "min_version", "alpn"]) else { return nil }
        var tls = ListenerTLS(certificates: [])
        if stored.isEmpty, object["certificates"] == nil {
            reader.fail(object.path("certificates"), "at least one certificate is required (or one uploaded through the admin API, with a store)")
        }
        if let node = object["certificates"] {
            let listPath = object.path("certificates")
            let items = reader.list(node, listPath)
            if items.isEmpty, stored.isEmpty, case .list = node {
                reader.fail(listPath, "at least one certificate is required (or one uploaded through the admin API, with a store)")
            }
            var seen: Set<String> = []
            for (index, item) in items.enumerated() {
                let itemPath = "\(listPath)[\(index)]"
                guard let files = certificateFiles(item, itemPath) else { continue }
                if !seen.insert(files.cert).inserted { reader.fail("\(itemPath).cert", "'\(files.cert)' is listed twice") }
                tls.certificates.append(files)
            }
        }
        if let node = object["default_certificate"], let value = reader.string(node, object.path("default_certificate")) {
            tls.defaultCertificate = value
            if tls.defaultIndex == nil, !stored.contains(where: { $0.name == value }) {
                let choices = tls.certificates.map(\.cert) + stored.map(\.name)
                let hint = ConfigReader.closest(to: value, in: choices).map { " (did you mean '\($0)'?)" } ?? ""
                reader.fail(
                    object.path("default_certificate"), "'\(value)' is neither the cert of one of the certificates nor a stored certificate\(hint)")
            }
        }
        if let node = object["min_version"],
            let value = reader.oneOf(node, object.path("min_version"), TLSVersion.allCases.map { ($0.rawValue, $0) })
        {
            tls.minVersion = value
        }
        if let node = object["alpn"], let names = reader.strings(node, object.path("alpn")) {
            var protocols: [ApplicationProtocol] = []
            for name in names {
                guard let value = ApplicationProtocol(rawValue: name) else {
                    let choices = ApplicationProtocol.allCases.map(\.rawValue)
                    reader.fail(object.path("alpn"), "'\(name)' is not one of \(choices.joined(separator: ", "))")
                    continue
                }
                if protocols.contains(value) { reader.fail(object.path("alpn"), "'\(name)' is listed twice") } else { protocols.append(value) }
            }
            if names.isEmpty { reader.fail(object.path("alpn"), "at least one protocol is required") }
            tls.alpn = protocols
        }
        return tls
    }

    private func http2Limits(_ node: ConfigDocument, _ path: String) -> HTTP2Limits {
        var limits = HTTP2Limits()
        guard let object = reader.object(node, path, allowed: ["max_concurrent_streams", "max_header_list_size", "header_table_size", "max_resets", "reset_window"])
        else { return limits }
        if let n = object["max_concurrent_streams"], let v = reader.int(n, object.path("max_concurrent_streams"), in: 1...10_000) {
            limits.maxConcurrentStreams = v
        }
        // at most the HTTP/1.1 reader's head limit (64 KiB), which reads every stream's request again
        if let n = object["max_header_list_size"], let v = reader.int(n, object.path("max_header_list_size"), in: 1024...65_536) {
            limits.maxHeaderListSize = v
        }
        if let n = object["header_table_size"], let v = reader.int(n, object.path("header_table_size"), in: 0...65_536) {
            limits.headerTableSize = v
        }
        if let n = object["max_resets"], let v = reader.int(n, object.path("max_resets"), in: 1...1_000_000) { limits.maxResets = v }
        if let n = object["reset_window"], let v = reader.duration(n, object.path("reset_window")) { limits.resetWindow = v }
        return limits
    }

    private func timeouts(_ node: ConfigDocument, _ path: String) -> Timeouts {
        var timeouts = Timeouts()
        guard let object = reader.object(node, path, allowed: ["connect", "upstream_response", "client_idle", "client_head", "upstream_idle", "client_stall", "upstream_stall", "tunnel_idle"])
        else { return timeouts }
        if let n = object["connect"], let v = reader.duration(n, object.path("connect")) { timeouts.connect = v }
        if let n = object["upstream_response"], let v = reader.duration(n, object.path("upstream_response")) {
            timeouts.upstreamResponse = v
        }
        if let n = object["client_idle"], let v = reader.duration(n, object.path("client_idle")) { timeouts.clientIdle = v }
        if let n = object["client_head"], let v = reader.duration(n, object.path("client_head")) { timeouts.clientHead = v }
        if let n = object["upstream_idle"], let v = reader.duration(n, object.path("upstream_idle")) { timeouts.upstreamIdle = v }
        if let n = object["client_stall"], let v = reader.duration(n, object.path("client_stall")) { timeouts.clientStall = v }
        if let n = object["upstream_stall"], let v = reader.duration(n, object.path("upstream_stall")) { timeouts.upstreamStall = v }
        if let n = object["tunnel_idle"], let v = reader.duration(n, object.path("tunnel_idle")) { timeouts.tunnelIdle = v }
        return timeouts
    }

    // MARK: services

    private func services(_ node: ConfigDocument, _ path: String, checkDefaults: ActiveHealthCheck) -> [Service] {
        let entries = reader.namedEntries(node, path)
        if entries.isEmpty, case .mapping = node { reader.fail(path, "at least one service is required") }
        var result: [Service] = []
        for (name, value) in entries {
            let servicePath = "\(path).\(name)"
            if !HTTPSyntax.isName(name) {
                reader.fail(servicePath, "service names may use letters, digits, '-', '_' and '.' only")
            }
            if var service = service(name, value, servicePath) {
                if let check = value["health_check"] {
                    service.healthCheck = healthCheck(check, "\(servicePath).health_check", base: checkDefaults)
                }
                result.append(service)
            }
        }
        return result
    }

    private func service(_ name: String, _ node: ConfigDocument, _ path: String) -> Service? {
        guard let object = reader.object(node, path, allowed: [
                "strategy", "hash_key", "pinned_node", "latency", "nodes", "passive_health", "when_no_node", "health_check",
                "circuit_breaker", "rate_limit", "max_in_flight", "slow_start", "access_rules", "cors",
            ]) else {
            return nil
        }
        var nodes: [Node] = []
        if let nodesNode = object.require("nodes") {
            let items = reader.list(nodesNode, object.path("nodes"))
            if items.isEmpty, case .list = nodesNode { reader.fail(object.path("nodes"), "at least one node is required") }
            var names: Set<String> = []
            for (index, item) in items.enumerated() {
                let nodePath = "\(object.path("nodes"))[\(index)]"
                guard let parsed = self.node(item, nodePath) else { continue }
                if !names.insert(parsed.name).inserted {
                    reader.fail("\(nodePath).name", "node name '\(parsed.name)' is used twice in service '\(name)'")
                }
                nodes.append(parsed)
            }
        }

        var strategy = BalancingStrategy.roundRobin
        let kind = object["strategy"].flatMap {
            reader.oneOf($0, object.path("strategy"), BalancingStrategy.Kind.allCases.map { ($0.rawValue, $0) })
        } ?? .roundRobin
        switch kind {
        case .roundRobin: strategy = .roundRobin
        case .random: strategy = .random
        case .leastConnections: strategy = .leastConnections
        case .latency:
            var settings = PeakEWMA.Settings()
            if let settingsNode = object["latency"],
                let fields = reader.object(settingsNode, object.path("latency"), allowed: ["decay", "failure_penalty"])
            {
                if let n = fields["decay"], let v = reader.duration(n, fields.path("decay")) { settings.decay = v }
                if let n = fields["failure_penalty"], let v = reader.duration(n, fields.path("failure_penalty")) { settings.failurePenalty = v }
            }
            strategy = .latency(settings)
        case .hash:
            if let keyNode = object.require("hash_key"), let text = reader.string(keyNode, object.path("hash_key")) {
                if let key = HashKey(parsing: text) { strategy = .hash(key) } else {
                    reader.fail(object.path("hash_key"), "'\(text)' is not client_ip, path, header:NAME, cookie:NAME or query:NAME")
                }
            }
        case .pinned:
            if let pinNode = object.require("pinned_node"), let pin = reader.string(pinNode, object.path("pinned_node")) {
                strategy = .pinned(node: pin)
                if !nodes.contains(where: { $0.name == pin }) {
                    reader.fail(object.path("pinned_node"), "service '\(name)' has no node '\(pin)'")
                }
            }
        }
        if kind != .hash, let extra = object["hash_key"] {
            reader.fail(object.path("hash_key"), "only used with strategy: hash")
        }
        if kind != .latency, let extra = object["latency"] {
            reader.fail(object.path("latency"), "only used with strategy: latency")
        }
        if kind != .pinned, let extra = object["pinned_node"] {
            reader.fail(object.path("pinned_node"), "only used with strategy: pinned")
        }
        if kind != .pinned, !nodes.isEmpty, nodes.allSatisfy({ $0.weight == 0 }) {
            reader.fail(object.path("nodes"), "every node has weight 0, so no node can receive traffic")
        }
        let passive = object["passive_health"].flatMap { passiveHealth($0, object.path("passive_health")) }
        let whenNoNode = object["when_no_node"].flatMap {
            reader.oneOf($0, object.path("when_no_node"), NoNodePolicy.allCases.map { ($0.rawValue, $0) })
        } ?? .reject
        var service = Service(name: name, strategy: strategy, nodes: nodes, passiveHealth: passive, whenNoNode: whenNoNode)
        service.circuitBreaker = object["circuit_breaker"].flatMap { circuitBreaker($0, object.path("circuit_breaker")) }
        service.rateLimit = object["rate_limit"].flatMap { rateLimit($0, object.path("rate_limit")) }
        service.maxInFlight = object["max_in_flight"].flatMap { reader.int($0, object.path("max_in_flight"), in: 1...10_000_000) }
        service.slowStart = object["slow_start"].flatMap { reader.duration($0, object.path("slow_start")) }
        service.cors = object["cors"].flatMap { cors($0, object.path("cors")) }
        return service
    }

    private func circuitBreaker(_ node: ConfigDocument, _ path: String) -> CircuitBreakerSettings? {
        let fields = [
            "window", "minimum_requests", "failure_ratio", "slow_threshold", "slow_ratio", "cool_down", "trial_requests",
            "failure_statuses",
        ]
        guard let object = reader.object(node, path, allowed: fields) else { return nil }
        var settings = CircuitBreakerSettings()
        if let n = object["window"], let v = reader.duration(n, object.path("window"), minimum: .seconds(1)) {
            if v.milliseconds % 1000 == 0 { settings.policy.window = v } else {
                reader.fail(object.path("window"), "must be a whole number of seconds")
            }
        }
        if let n = object["minimum_requests"], let v = reader.int(n, object.path("minimum_requests"), in: 1...1_000_000) {
            settings.policy.minimumRequests = v
        }
        if let n = object["failure_ratio"], let v = ratio(n, object.path("failure_ratio")) { settings.policy.failureRatio = v }
        if let n = object["slow_threshold"], let v = reader.duration(n, object.path("slow_threshold")) { settings.policy.slowThreshold = v }
        if let n = object["slow_ratio"], let v = ratio(n, object.path("slow_ratio")) { settings.policy.slowRatio = v }
        if let n = object["cool_down"], let v = reader.duration(n, object.path("cool_down")) { settings.policy.coolDown = v }
        if let n = object["trial_requests"], let v = reader.int(n, object.path("trial_requests"), in: 1...1000) {
            settings.policy.trialRequests = v
        }
        if let n = object["failure_statuses"] {
            settings.failureStatuses = []
            for (index, item) in reader.list(n, object.path("failure_statuses")).enumerated() {
                if let status = reader.int(item, "\(object.path("failure_statuses"))[\(index)]", in: 400...599) {
                    settings.failureStatuses.append(status)
                }
            }
        }
        return settings
    }

    private func rateLimit(_ node: ConfigDocument, _ path: String) -> RateLimit? {
        let fields = ["algorithm", "rate", "burst", "max_delay", "limit", "window", "key", "max_keys", "body"]
        guard let object = reader.object(node, path, allowed: fields) else { return nil }
        let kind = object["algorithm"].flatMap {
            reader.oneOf($0, object.path("algorithm"), RateLimit.Algorithm.Kind.allCases.map { ($0.rawValue, $0) })
        } ?? .tokenBucket
        func rate() -> Double? {
            guard let n = object.require("rate") else { return nil }
            guard let value = reader.number(n), value > 0, value <= 1e7 else {
                reader.fail(object.path("rate"), "expected requests per second, a number above 0")
                return nil
            }
            return value
        }
        let allowedFields: [String]
        var algorithm: RateLimit.Algorithm? = nil
        switch kind {
        case .leakyBucket:
            allowedFields = ["rate", "max_delay"]
            let maxDelay = object["max_delay"].flatMap { reader.duration($0, object.path("max_delay"), minimum: .zero) } ?? .zero
            if let rate = rate() { algorithm = .leakyBucket(rate: rate, maxDelay: maxDelay) }
        case .slidingWindow:
            allowedFields = ["limit", "window"]
            let limit = object.require("limit").flatMap { reader.int($0, object.path("limit"), in: 1...100_000_000) }
            let window = object.require("window").flatMap { reader.duration($0, object.path("window")) }
            if let limit, let window { algorithm = .slidingWindow(limit: limit, window: window) }
        case .tokenBucket:
            allowedFields = ["rate", "burst"]
            let rate = rate()
            let burst = object["burst"].flatMap { reader.int($0, object.path("burst"), in: 1...100_000_000) } ?? max(1, Int(rate ?? 1))
            if let rate { algorithm = .tokenBucket(rate: rate, burst: burst) }
        }
        for field in ["rate", "burst", "max_delay", "limit", "window"] where object[field] != nil && !allowedFields.contains(field) {
            reader.fail(object.path(field), "not used by algorithm \(kind.rawValue)")
        }
        var key = RateLimit.Key.clientIP
        if let n = object["key"], let text = reader.string(n, object.path("key")) {
            switch text {
            case "client_ip": key = .clientIP
            case "route", "service": key = .whole
            default:
                switch HashKey(parsing: text) {
                case .header(let header)?: key = .header(header)
                case .cookie(let cookie)?: key = .cookie(cookie)
                case .query(let query)?: key = .query(query)
                default: reader.fail(object.path("key"), "'\(text)' is not client_ip, route, service, header:NAME, cookie:NAME or query:NAME")
                }
            }
        }
        guard let algorithm else { return nil }
        var limit = RateLimit(algorithm: algorithm, key: key)
        if let n = object["max_keys"], let v = reader.int(n, object.path("max_keys"), in: 1...100_000_000) { limit.maxKeys = v }
        if let n = object["body"], let v = reader.string(n, object.path("body"), allowEmpty: true) { limit.body = v }
        return limit
    }

    /// A number from 0 to 1 (`0.5`) or a percentage (`50%`).
    private func ratio(_ node: ConfigDocument, _ path: String) -> Double? {
        guard let text = node.scalarText else {
            reader.fail(path, "expected a ratio such as 0.5 or 50%")
            return nil
        }
        let value = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
        guard let value, value > 0, value <= 1 else {
            reader.fail(path, "'\(text)' is not a ratio above 0 and at most 1 (or 100%)")
            return nil
        }
        return value
    }

    private func healthCheck(_ node: ConfigDocument, _ path: String, base: ActiveHealthCheck) -> ActiveHealthCheck? {
        let fields = [
            "type", "interval", "timeout", "method", "path", "host", "headers", "raw_request", "expected_statuses",
            "body_contains", "healthy_threshold", "unhealthy_threshold",
        ]
        guard let object = reader.object(node, path, allowed: fields) else { return nil }
        var check = base
        if let n = object["type"], let v = reader.oneOf(n, object.path("type"), ActiveHealthCheck.Kind.allCases.map { ($0.rawValue, $0) }) {
            check.kind = v
        }
        if let n = object["interval"], let v = reader.duration(n, object.path("interval"), minimum: .milliseconds(10)) { check.interval = v }
        if let n = object["timeout"], let v = reader.duration(n, object.path("timeout")) { check.timeout = v }
        if check.timeout > check.interval {
            reader.fail(object.path("timeout"), "must not be longer than the interval (\(ConfigDuration.format(check.interval)))")
        }
        if let n = object["method"], let v = reader.string(n, object.path("method")) {
            if HTTPSyntax.isToken(v) && v.uppercased() == v { check.method = v } else {
                reader.fail(object.path("method"), "'\(v)' is not an upper-case HTTP method")
            }
        }
        if let n = object["path"], let v = reader.string(n, object.path("path")) {
            if v.hasPrefix("/") && !v.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) { check.path = v } else {
                reader.fail(object.path("path"), "must start with '/' and contain no spaces or line breaks")
            }
        }
        if let n = object["host"], let v = reader.string(n, object.path("host")) { check.host = v }
        if let n = object["headers"] {
            check.headers = []
            for (name, value) in reader.namedEntries(n, object.path("headers")) {
                let entryPath = "\(object.path("headers")).\(name)"
                if !HTTPSyntax.isToken(name) { reader.fail(entryPath, "'\(name)' is not a valid header name") }
                if let text = reader.string(value, entryPath, allowEmpty: true) { check.headers.append(ValueCondition(name: name, values: [text])) }
            }
        }
        if let n = object["raw_request"], let v = reader.string(n, object.path("raw_request")) { check.rawRequest = v }
        if let n = object["expected_statuses"] {
            var ranges: [ClosedRange<Int>] = []
            for (index, item) in reader.list(n, object.path("expected_statuses")).enumerated() {
                let itemPath = "\(object.path("expected_statuses"))[\(index)]"
                guard let text = item.scalarText else {
                    reader.fail(itemPath, "expected a status such as 200 or a range such as 200-299")
                    continue
                }
                let bounds = text.split(separator: "-", maxSplits: 1).map { Int($0.filter { $0 != " " }) }
                if bounds.count == 1, let low = bounds[0], (100...599).contains(low) {
                    ranges.append(low...low)
                } else if bounds.count == 2, let low = bounds[0], let high = bounds[1], 100 <= low, low <= high, high <= 599 {
                    ranges.append(low...high)
                } else {
                    reader.fail(itemPath, "'\(text)' is not a status (100-599) or a range such as 200-299")
                }
            }
            check.expectedStatuses = ranges
        }
        if let n = object["body_contains"], let v = reader.string(n, object.path("body_contains")) { check.bodyContains = v }
        var healthy = check.thresholds.healthy
        var unhealthy = check.thresholds.unhealthy
        if let n = object["healthy_threshold"], let v = reader.int(n, object.path("healthy_threshold"), in: 1...100) { healthy = v }
        if let n = object["unhealthy_threshold"], let v = reader.int(n, object.path("unhealthy_threshold"), in: 1...100) { unhealthy = v }
        check.thresholds = ProbeHealth.Thresholds(healthy: healthy, unhealthy: unhealthy)
        if check.kind == .tcp {
            for field in ["method", "path", "host", "headers", "raw_request", "expected_statuses", "body_contains"] where object[field] != nil {
                reader.fail(object.path(field), "only used with type: http")
            }
        }
        return check
    }

    private func passiveHealth(_ node: ConfigDocument, _ path: String) -> PassiveHealth? {
        let fields = ["consecutive_failures", "base_ejection", "max_ejection", "max_ejected_percent", "failure_statuses"]
        guard let object = reader.object(node, path, allowed: fields) else { return nil }
        var health = PassiveHealth()
        if let n = object["consecutive_failures"], let v = reader.int(n, object.path("consecutive_failures"), in: 1...1000) {
            health.policy.consecutiveFailures = v
        }
        if let n = object["base_ejection"], let v = reader.duration(n, object.path("base_ejection")) { health.policy.baseEjection = v }
        if let n = object["max_ejection"], let v = reader.duration(n, object.path("max_ejection")) { health.policy.maxEjection = v }
        if health.policy.maxEjection < health.policy.baseEjection {
            reader.fail(object.path("max_ejection"), "must not be shorter than base_ejection")
        }
        if let n = object["max_ejected_percent"], let v = reader.int(n, object.path("max_ejected_percent"), in: 0...100) {
            health.policy.maxEjectedPercent = v
        }
        if let n = object["failure_statuses"] {
            var statuses: [Int] = []
            for (index, item) in reader.list(n, object.path("failure_statuses")).enumerated() {
                if let status = reader.int(item, "\(object.path("failure_statuses"))[\(index)]", in: 500...599) { statuses.append(status) }
            }
            health.failureStatuses = statuses
        }
        return health
    }

    private func node(_ item: ConfigDocument, _ path: String) -> Node? {
        guard let object = reader.object(item, path, allowed: ["name", "host", "port", "weight", "tags", "drain", "tls"]) else { return nil }
        let name = object.require("name").flatMap { n in
            reader.string(n, object.path("name")).flatMap { value in
                HTTPSyntax.isName(value) ? value : { reader.fail(object.path("name"), "node names may use letters, digits, '-', '_' and '.' only"); return nil }()
            }
        }
        let host = object.require("host").flatMap { n in
            reader.string(n, object.path("host")).flatMap { value in
                HTTPSyntax.isHost(value) ? value : { reader.fail(object.path("host"), "'\(value)' is not an IP address or host name"); return nil }()
            }
        }
        let port = object.require("port").flatMap { reader.int($0, object.path("port"), in: 1...65535) }
        let weight = object["weight"].map { reader.int($0, object.path("weight"), in: 0...10_000) } ?? 1
        let tags = object["tags"].map { reader.strings($0, object.path("tags")) } ?? []
        let drain = object["drain"].map { reader.bool($0, object.path("drain")) } ?? false
        var tls: NodeTLS?
        if let node = object["tls"] {
            guard let value = nodeTLS(node, object.path("tls")) else { return nil }
            tls = value
        }
        guard let name, let host, let port, let weight, let tags, let drain else { return nil }
        return Node(name: name, host: host, port: port, weight: weight, tags: tags, drain: drain, tls: tls)
    }

    private func nodeTLS(_ node: ConfigDocument, _ path: String) -> NodeTLS? {
        guard let object = reader.object(node, path, allowed: ["verify", "ca_file", "server_name", "client_certificate"]) else { return nil }
        var tls = NodeTLS()
        if let node = object["verify"], let value = reader.bool(node, object.path("verify")) {
            tls.verify = value
        }
        if let node = object["ca_file"], let value = reader.string(node, object.path("ca_file")) {
            tls.caFile = value
            if !tls.verify { reader.fail(object.path("ca_file"), "a CA file is only used to verify the node; remove it or set verify: true") }
        }
        if let node = object["server_name"], let value = reader.string(node, object.path("server_name")) {
            if HTTPSyntax.isHost(value), !HTTPSyntax.isIPAddress(value) { tls.serverName = value } else {
                reader.fail(object.path("server_name"), "'\(value)' is not a host name (SNI carries names, not addresses)")
            }
        }
        if let node = object["client_certificate"] {
            tls.clientCertificate = certificateFiles(node, object.path("client_certificate"))
        }
        return tls
    }

    // MARK: routes

    static let routeFields = [
        "name", "match", "service", "node", "split", "redirect", "respond", "static", "rate_limit", "max_in_flight", "access_rules", "cors",
        "strip_prefix", "rewrite", "host", "request_headers", "response_headers",
    ]

    private func routes(_ node: ConfigDocument, _ path: String, services: [Service]) -> [Route] {
        var result: [Route] = []
        var names: Set<String> = []
        for (index, item) in reader.list(node, path).enumerated() {
            let routePath = "\(path)[\(index)]"
            guard let object = reader.object(item, routePath, allowed: Self.routeFields) else { continue }
            let name = object.require("name").flatMap { reader.string($0, object.path("name")) }
            if let name, !names.insert(name).inserted {
                reader.fail(object.path("name"), "route name '\(name)' is used twice")
            }
            let match = object["match"].map { self.match($0, object.path("match")) } ?? RouteMatch()
            let actions = ["service", "split", "redirect", "respond", "static"].filter { object[$0] != nil }
            if actions.count > 1 {
                reader.fail(routePath, "a route has one of service, split, redirect, respond and static; this one has \(actions.joined(separator: " and "))")
                continue
            }
            let pathCaptures = (match?.path?.regex).map { source in (try? PathPattern.groupCount(source).get()) ?? 0 } ?? 0
            var action: RouteAction?
            var split: TrafficSplit?
            if let splitNode = object["split"] {
                if object["node"] != nil { reader.fail(object.path("node"), "a route with a split names its targets in split.targets") }
                split = self.split(splitNode, object.path("split"), services: services)
                action = split.map { .proxy(RouteTarget(service: $0.targets[0].service)) }
            } else if let redirectNode = object["redirect"] {
                action = redirect(redirectNode, object.path("redirect"), captures: pathCaptures).map { .redirect($0) }
            } else if let respondNode = object["respond"] {
                action = fixedResponse(respondNode, object.path("respond")).map { .respond($0) }
            } else if let staticNode = object["static"] {
                action = staticFiles(staticNode, object.path("static")).map { .serveFiles($0) }
            } else {
                action = self.target(item, routePath, services: services, allowed: nil).map { .proxy($0) }
            }
            let isLocal = object["redirect"] != nil || object["respond"] != nil || object["static"] != nil
            if isLocal {
                for field in ["node", "rate_limit", "max_in_flight", "rewrite", "host", "request_headers", "cors"] where object[field] != nil {
                    reader.fail(object.path(field), "a route that answers itself (\(actions.first!)) sends nothing to a node")
                }
            }
            let shaping = self.shaping(object, pathCaptures: pathCaptures)
            let limit = object["rate_limit"].flatMap { rateLimit($0, object.path("rate_limit")) }
            let maxInFlight = object["max_in_flight"].flatMap { reader.int($0, object.path("max_in_flight"), in: 1...10_000_000) }
            if let name, let match, let action {
                var route = Route(name: name, match: match, action: action)
                route.rateLimit = limit
                route.maxInFlight = maxInFlight
                route.split = split
                route.shaping = shaping
                route.cors = object["cors"].flatMap { cors($0, object.path("cors")) }
                result.append(route)
            }
        }
        return result
    }

    // MARK: traffic splits

    private func split(_ node: ConfigDocument, _ path: String, services: [Service]) -> TrafficSplit? {
        guard let object = reader.object(node, path, allowed: ["targets", "rules", "hash_key", "sticky_cookie", "rollout"]) else { return nil }
        let before = reader.issues.count
        var targets: [TrafficSplit.Target] = []
        if let targetsNode = object.require("targets") {
            let items = reader.list(targetsNode, object.path("targets"))
            if items.count < 2, case .list = targetsNode {
                reader.fail(object.path("targets"), "a split needs at least two targets")
            }
            for (index, item) in items.enumerated() {
                if let target = splitTarget(item, "\(object.path("targets"))[\(index)]", services: services) {
                    if targets.contains(where: { $0.name == target.name }) {
                        reader.fail("\(object.path("targets"))[\(index)]", "two targets are called '\(target.name)': give them names")
                    }
                    targets.append(target)
                }
            }
            let total = targets.reduce(0) { $0 + $1.weight }
            if targets.count == items.count, !items.isEmpty, total != 100 {
                reader.fail(object.path("targets"), "the weights add up to \(total), not 100")
            }
        }
        var rules: [TrafficSplit.Rule] = []
        if let rulesNode = object["rules"] {
            for (index, item) in reader.list(rulesNode, object.path("rules")).enumerated() {
                if let rule = splitRule(item, "\(object.path("rules"))[\(index)]", targets: targets) { rules.append(rule) }
            }
        }
        var split = TrafficSplit(targets: targets, rules: rules)
        if let keyNode = object["hash_key"], let text = reader.string(keyNode, object.path("hash_key")) {
            if let key = HashKey(parsing: text) { split.hashKey = key } else {
                reader.fail(object.path("hash_key"), "'\(text)' is not client_ip, path, header:NAME, cookie:NAME or query:NAME")
            }
        }
        if let cookieNode = object["sticky_cookie"], let fields = reader.object(cookieNode, object.path("sticky_cookie"), allowed: ["name", "max_age"]) {
            let name = fields.require("name").flatMap { reader.string($0, fields.path("name")) }
            if let name, !HTTPSyntax.isToken(name) { reader.fail(fields.path("name"), "'\(name)' is not a valid cookie name") }
            let maxAge = fields["max_age"].map { reader.duration($0, fields.path("max_age"), minimum: .seconds(1)) } ?? .seconds(86_400)
            if let name, let maxAge { split.stickyCookie = .init(name: name, maxAge: maxAge) }
        }
        if let rolloutNode = object["rollout"] {
            split.rollout = rollout(rolloutNode, object.path("rollout"), targets: targets)
        }
        return reader.issues.count == before && targets.count >= 2 ? split : nil
    }

    private func rollout(_ node: ConfigDocument, _ path: String, targets: [TrafficSplit.Target]) -> Rollout? {
        guard let object = reader.object(node, path, allowed: ["canary", "steps", "step_time", "paused", "guard"]) else { return nil }
        if targets.count != 2 { reader.fail(path, "a rollout needs a split of exactly two targets: the baseline and the canary") }
        guard let canaryNode = object.require("canary"), let canary = reader.string(canaryNode, object.path("canary")) else { return nil }
        if !targets.isEmpty, !targets.contains(where: { $0.name == canary }) {
            reader.fail(object.path("canary"), "no target named '\(canary)' (targets: \(targets.map(\.name).joined(separator: ", ")))")
        }
        var steps = [1, 5, 25, 50, 100]
        if let stepsNode = object["steps"] {
            let items = reader.list(stepsNode, object.path("steps"))
            steps = items.enumerated().compactMap { index, item in reader.int(item, "\(object.path("steps"))[\(index)]", in: 1...100) }
            if steps.count == items.count, steps.isEmpty || steps != steps.sorted() || Set(steps).count != steps.count || steps.last != 100 {
                reader.fail(object.path("steps"), "steps are increasing percentages ending with 100")
            }
        }
        let stepTime = object["step_time"].flatMap { reader.duration($0, object.path("step_time")) } ?? .seconds(300)
        let paused = object["paused"].flatMap { reader.bool($0, object.path("paused")) } ?? false
        var rails = Rollout.GuardRails()
        if let guardNode = object["guard"], let fields = reader.object(guardNode, object.path("guard"), allowed: [
            "min_requests", "max_error_ratio", "max_error_ratio_increase", "max_p99", "max_p99_ratio",
        ]) {
            if let n = fields["min_requests"], let v = reader.int(n, fields.path("min_requests"), in: 1...100_000_000) { rails.minimumRequests = v }
            if let n = fields["max_error_ratio"] { rails.maxErrorRatio = fraction(n, fields.path("max_error_ratio")) }
            rails.maxErrorRatioIncrease = fields["max_error_ratio_increase"].flatMap { fraction($0, fields.path("max_error_ratio_increase")) }
            rails.maxP99 = fields["max_p99"].flatMap { reader.duration($0, fields.path("max_p99")) }
            if let n = fields["max_p99_ratio"] {
                if let value = reader.number(n), value >= 1 { rails.maxP99Ratio = value } else {
                    reader.fail(fields.path("max_p99_ratio"), "expected a number of at least 1")
                }
            }
        }
        return Rollout(canary: canary, steps: steps, stepTime: stepTime, paused: paused, guardRails: rails)
    }

    private func fraction(_ node: ConfigDocument, _ path: String) -> Double? {
        guard let value = reader.number(node), (0...1).contains(value) else {
            reader.fail(path, "expected a ratio between 0 and 1 (0.05 is 5 %)")
            return nil
        }
        return value
    }

    private func splitTarget(_ node: ConfigDocument, _ path: String, services: [Service]) -> TrafficSplit.Target? {
        guard let object = reader.object(node, path, allowed: ["name", "service", "tags", "weight"]),
            let serviceNode = object.require("service"), let serviceName = reader.string(serviceNode, object.path("service")),
            let weightNode = object.require("weight"), let weight = reader.int(weightNode, object.path("weight"), in: 0...100)
        else { return nil }
        let tags = object["tags"].flatMap { reader.strings($0, object.path("tags")) } ?? []
        guard let service = services.first(where: { $0.name == serviceName }) else {
            reader.fail(object.path("service"), "no service named '\(serviceName)'")
            return nil
        }
        if !tags.isEmpty, !service.nodes.contains(where: { node in tags.allSatisfy(node.tags.contains) }) {
            reader.fail(object.path("tags"), "no node of service '\(serviceName)' has the tags \(tags.joined(separator: ", "))")
        }
        var name = TrafficSplit.Target.defaultName(service: serviceName, tags: tags)
        if let nameNode = object["name"], let given = reader.string(nameNode, object.path("name")) {
            if !HTTPSyntax.isToken(given) { reader.fail(object.path("name"), "'\(given)' is not a valid target name (it is used as a cookie value)") }
            name = given
        }
        return TrafficSplit.Target(name: name, service: serviceName, tags: tags, weight: weight)
    }

    private func splitRule(_ node: ConfigDocument, _ path: String, targets: [TrafficSplit.Target]) -> TrafficSplit.Rule? {
        let kinds = ["header", "cookie", "query", "client_ip"]
        guard let object = reader.object(node, path, allowed: ["to"] + kinds),
            let toNode = object.require("to"), let to = reader.string(toNode, object.path("to"))
        else { return nil }
        if !targets.isEmpty, !targets.contains(where: { $0.name == to }) {
            reader.fail(object.path("to"), "no target named '\(to)' (targets: \(targets.map(\.name).joined(separator: ", ")))")
        }
        let present = kinds.filter { object[$0] != nil }
        guard present.count == 1, let kind = present.first, let conditionNode = object[kind] else {
            reader.fail(path, "a rule has exactly one of \(kinds.joined(separator: ", "))")
            return nil
        }
        if kind == "client_ip" {
            guard let texts = reader.strings(conditionNode, object.path(kind)) else { return nil }
            var ranges: [AddressRange] = []
            for text in texts {
                if let range = AddressRange(parsing: text) { ranges.append(range) } else {
                    reader.fail(object.path(kind), "'\(text)' is not an IP address or CIDR range")
                }
            }
            return TrafficSplit.Rule(target: to, condition: .clientIP(ranges))
        }
        let conditions = self.conditions(conditionNode, object.path(kind), validName: kind == "query" ? { !$0.isEmpty } : HTTPSyntax.isToken)
        guard conditions.count == 1 else {
            reader.fail(object.path(kind), "give one \(kind) name and its value(s)")
            return nil
        }
        switch kind {
        case "header": return TrafficSplit.Rule(target: to, condition: .header(conditions[0]))
        case "cookie": return TrafficSplit.Rule(target: to, condition: .cookie(conditions[0]))
        default: return TrafficSplit.Rule(target: to, condition: .query(conditions[0]))
        }
    }

    /// Reads `service` and `node` from a mapping; `allowed` checks the keys when the mapping is only a target.
    private func target(_ node: ConfigDocument, _ path: String, services: [Service], allowed: [String]?) -> RouteTarget? {
        let object: ConfigObject?
        if let allowed {
            object = reader.object(node, path, allowed: allowed)
        } else if case .mapping(let members) = node {
            object = ConfigObject(path: path, fields: Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }), reader: reader)
        } else {
            object = nil
        }
        guard let object, let serviceNode = object.require("service"),
            let serviceName = reader.string(serviceNode, object.path("service"))
        else { return nil }
        let service = services.first { $0.name == serviceName }
        if service == nil {
            reader.fail(object.path("service"), "no service named '\(serviceName)'")
        }
        var target = RouteTarget(service: serviceName)
        if let nodeNode = object["node"], let nodeName = reader.string(nodeNode, object.path("node")) {
            if let service, service.nodeIndex(named: nodeName) == nil {
                reader.fail(object.path("node"), "service '\(serviceName)' has no node '\(nodeName)'")
            }
            target.node = nodeName
        }
        return target
    }

    private func match(_ node: ConfigDocument, _ path: String) -> RouteMatch? {
        let fields = ["host", "path", "path_prefix", "path_regex", "methods", "headers", "query", "cookies", "body"]
        guard let object = reader.object(node, path, allowed: fields) else { return nil }
        var match = RouteMatch()
        let before = reader.issues.count

        if let hostNode = object["host"], let hosts = reader.strings(hostNode, object.path("host")) {
            for host in hosts where !HTTPSyntax.isHostPattern(host) {
                reader.fail(object.path("host"), "'\(host)' is not a host name or *.domain pattern")
            }
            match.hosts = hosts.map { $0.lowercased() }
        }

        let pathKinds = ["path", "path_prefix", "path_regex"].filter { object[$0] != nil }
        if pathKinds.count > 1 {
            reader.fail(path, "use only one of \(pathKinds.joined(separator: ", "))")
        } else if let kind = pathKinds.first, let valueNode = object[kind], let value = reader.string(valueNode, object.path(kind)) {
            switch kind {
            case "path", "path_prefix":
                if !value.hasPrefix("/") {
                    reader.fail(object.path(kind), "must start with '/'")
                }
                match.path = kind == "path" ? .exact(value) : .prefix(value)
            default:
                if let problem = PathPattern.compileError(value) {
                    reader.fail(object.path(kind), "invalid regular expression: \(problem)")
                }
                match.path = .regex(value)
            }
        }

        if let methodsNode = object["methods"], let methods = reader.strings(methodsNode, object.path("methods")) {
            for method in methods where !HTTPSyntax.isToken(method) || method.uppercased() != method {
                reader.fail(object.path("methods"), "'\(method)' is not an upper-case HTTP method")
            }
            match.methods = methods
        }
        match.headers = conditions(object["headers"], object.path("headers"), validName: HTTPSyntax.isToken)
        match.query = conditions(object["query"], object.path("query"), validName: { !$0.isEmpty })
        match.cookies = conditions(object["cookies"], object.path("cookies"), validName: HTTPSyntax.isToken)
        if let bodyNode = object["body"] { match.body = bodyCondition(bodyNode, object.path("body")) }
        return reader.issues.count == before ? match : nil
    }

    private func conditions(_ node: ConfigDocument?, _ path: String, validName: (String) -> Bool) -> [ValueCondition] {
        guard let node else { return [] }
        var result: [ValueCondition] = []
        for (name, value) in reader.namedEntries(node, path) {
            let entryPath = "\(path).\(name)"
            if !validName(name) { reader.fail(entryPath, "'\(name)' is not a valid name") }
            if let values = reader.strings(value, entryPath) {
                result.append(ValueCondition(name: name, values: values))
            }
        }
        return result
    }

    // MARK: error pages

    private func errorPages(_ node: ConfigDocument, _ path: String) -> [Int: ErrorPage] {
        var pages: [Int: ErrorPage] = [:]
        for (key, value) in reader.namedEntries(node, path) {
            let pagePath = "\(path).\(key)"
            guard let status = Int(key), (400...599).contains(status) else {
                reader.fail(pagePath, "keys are status codes from 400 to 599")
                continue
            }
            guard let object = reader.object(value, pagePath, allowed: ["content_type", "body"]) else { continue }
            var page = ErrorPage(body: "")
            if let n = object.require("body"), let body = reader.string(n, object.path("body"), allowEmpty: true) {
                page.body = body
            }
            if let n = object["content_type"], let type = reader.string(n, object.path("content_type")) {
                page.contentType = type
            }
            pages[status] = page
        }
        return pages
    }
}
