import FulcrumCore
import NIOHTTP1

/// Presents a decoded request head to the router without copying: path, query and headers are
/// slices of the head's own strings.
struct HeadRoutingRequest: RoutingRequest {
    let head: HTTPRequestHead
    let clientIP: Substring
    let path: Substring
    let query: Substring

    init(head: HTTPRequestHead, clientIP: Substring) {
        self.head = head
        self.clientIP = clientIP
        let uri = head.uri[...]
        if let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = uri[..<question]
            query = uri[uri.utf8.index(after: question)...]
        } else {
            path = uri
            query = uri[uri.endIndex...]
        }
    }

    var method: String { head.method.rawValue }

    var host: Substring? {
        guard let value = header("host") else { return nil }
        if value.hasPrefix("[") {  // [v6]:port
            return value.firstIndex(of: "]").map { value[value.startIndex...$0] } ?? value
        }
        return value.firstIndex(of: ":").map { value[..<$0] } ?? value
    }

    func header(_ name: String) -> Substring? {
        head.headers.first(name: name).map { $0[...] }
    }
}
