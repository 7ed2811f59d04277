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

    @Option(name: .customLong("body"), help: "The request body, for routes with a body condition.")
    var body: String?

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
        var request: DescribedRequest
        do throws(RequestTargetError) {
            request = try DescribedRequest(
                method: method.uppercased(), target: target, headers: fields, clientIP: clientIP, encodedSlashes: parsed.encodedSlashes)
            request.body = body.map { Array($0.utf8) }
        } catch {
            print("refused with 400: \(error.reason)")
            throw ExitCode(1)
        }
        print(RouteReport(config: parsed, request: request).text)
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
