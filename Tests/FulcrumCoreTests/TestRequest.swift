import FulcrumCore

/// Shorthand for the router and balancer tests: `TestRequest("GET", "/path?q", host:, headers:)`.
func TestRequest(
    _ method: String = "GET", _ target: String, host: String? = nil, headers: [(String, String)] = [], clientIP: String = "127.0.0.1"
) -> DescribedRequest {
    var all = headers.map { (name: $0.0, value: $0.1) }
    if let host { all.append((name: "Host", value: host)) }
    // the targets of these tests are normal paths; a refused one traps, failing the test
    return try! DescribedRequest(method: method, target: target, headers: all, clientIP: clientIP)
}
