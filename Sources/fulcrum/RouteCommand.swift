import ArgumentParser
import FulcrumCore

/// `fulcrum route`: explains, without sending anything, where a request would go and why.
struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Explain which route, service and node a request would get, and why.",
        discussion: "Example: fulcrum route -c fulcrum.yaml GET '/api/v1/users?lang=zh' -H 'Host: example.com' -H 'Cookie: beta=1'")

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON).")
    var config: String

    @Argument(help: "The request method.")
    var method: String

    @Argument(help: "The request target: path and optional query string.")
    var target: String

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(name: .customLong("client-ip"), help: "The client address, for client_ip hashing.")
    var clientIP = "127.0.0.1"

    func run() throws {
        let parsed: FulcrumConfig
        do {
            parsed = try ConfigFile.load(config)
        } catch let error as ConfigError {
            print("\(config): \(error)")
            throw ExitCode(1)
        }
        var fields: [(name: String, value: String)] = []
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else {
                throw ValidationError("header '\(header)' is not 'Name: value'")
            }
            fields.append((String(header[..<colon]).trimmingSpaces, String(header[header.index(after: colon)...]).trimmingSpaces))
        }
        let request = DescribedRequest(method: method.uppercased(), target: target, headers: fields, clientIP: clientIP)
        print(RouteReport(config: parsed, request: request).text)
    }
}

/// The human-readable answer of `fulcrum route`.
struct RouteReport {
    let config: FulcrumConfig
    let request: DescribedRequest

    var text: String {
        let router = Router(config: config)
        let explanation = router.explain(request)
        var lines = ["\(request.method) \(request.path)\(request.query.isEmpty ? "" : "?" + request.query)", "routes in match order:"]
        for step in explanation.steps {
            let verdict: String
            switch step.outcome {
            case .matched: verdict = "MATCH"
            case .shadowed: verdict = "would match, but an earlier route already did"
            case .rejected(let reason): verdict = "no: \(reason)"
            }
            lines.append("  \(step.routeName) [\(step.pathKind)] \(verdict)")
        }
        if explanation.steps.isEmpty { lines.append("  (no routes)") }
        guard let decision = explanation.decision else {
            lines.append("result: 404, no route matches and there is no default")
            return lines.joined(separator: "\n")
        }
        let service = config.services[decision.serviceIndex]
        lines.append("route: \(explanation.usedDefault ? "default" : router.routeName(decision))")
        lines.append("service: \(service.name) (strategy \(service.strategy.name))")
        if let pinned = decision.pinnedNode {
            lines.append("node: \(describe(service.nodes[pinned])) (pinned by the route)")
            return lines.joined(separator: "\n")
        }
        var balancer = ServiceBalancer(service: service)
        var random = FastRandom(seed: 0)
        let pick = balancer.pick(for: request, random: &random, isEligible: { _ in true }).map { service.nodes[$0] }
        switch service.strategy {
        case .pinned:
            lines.append("node: \(pick.map(describe) ?? "none") (the service pins every request)")
        case .hash(let key):
            if ServiceBalancer.keyValue(key, of: request) != nil {
                lines.append("node: \(pick.map(describe) ?? "none") (hash of \(key); the same key always gets this node)")
            } else {
                lines.append("node: any, by weight (the request has no \(key), so hashing falls back to weighted random)")
            }
        case .roundRobin, .random, .leastConnections:
            let weights = service.nodes.map { "\($0.name)=\($0.weight)" }.joined(separator: ", ")
            lines.append("node: chosen per request by \(service.strategy.name) over \(weights); a fresh balancer picks \(pick.map(describe) ?? "none")")
        }
        return lines.joined(separator: "\n")
    }

    private func describe(_ node: Node) -> String {
        "\(node.name) (\(node.host):\(node.port))"
    }
}

extension String {
    var trimmingSpaces: String {
        var text = self[...]
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
