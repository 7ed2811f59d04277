import FulcrumCore

/// A request built from plain values, for router and balancer tests.
struct TestRequest: RoutingRequest {
    var method: String = "GET"
    var path: Substring
    var query: Substring = ""
    var host: Substring? = nil
    var clientIP: Substring = "127.0.0.1"
    var headers: [(String, String)] = []

    init(_ method: String = "GET", _ target: String, host: String? = nil, headers: [(String, String)] = [], clientIP: String = "127.0.0.1") {
        self.method = method
        if let question = target.firstIndex(of: "?") {
            path = target[..<question]
            query = target[target.index(after: question)...]
        } else {
            path = target[...]
        }
        self.host = host.map { $0[...] }
        self.headers = headers
        self.clientIP = clientIP[...]
    }

    func header(_ name: String) -> Substring? {
        headers.first { $0.0.lowercased() == name.lowercased() }.map { $0.1[...] }
    }
}
