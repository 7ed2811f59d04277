import FulcrumCore

/// Presents a request head to the router without copying: method, path, query and headers are
/// slices of the head's text.
struct HeadRoutingRequest: RoutingRequest {
    let head: RequestHead
    let clientIP: Substring
    let path: Substring
    let query: Substring

    init(head: RequestHead, clientIP: Substring) {
        self.head = head
        self.clientIP = clientIP
        var target = head.target
        if target.utf8.first != UInt8(ascii: "/") {
            // absolute-form: the path starts after the authority (`*` routes as it is)
            let afterScheme = target.utf8.firstRange(of: "://".utf8).map { $0.upperBound } ?? target.endIndex
            let pathStart = target[afterScheme...].utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
            target = pathStart.map { target[$0...] } ?? (afterScheme == target.endIndex ? target : "/")
        }
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<question]
            query = target[target.utf8.index(after: question)...]
        } else {
            path = target
            query = target[target.endIndex...]
        }
    }

    var method: String { head.method }

    var host: Substring? {
        guard let field = head.hostField else { return nil }
        let value = head.value(head.fields[field])
        if value.hasPrefix("[") {  // [v6]:port
            return value.firstIndex(of: "]").map { value[value.startIndex...$0] } ?? value
        }
        return value.firstIndex(of: ":").map { value[..<$0] } ?? value
    }

    func header(_ name: String) -> Substring? {
        head.header(name)
    }
}
