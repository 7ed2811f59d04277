import FulcrumCore
import FulcrumHTTP1

/// Presents a request head to the router without copying: method, path, query and headers are
/// slices of the head's text. The path is normalised first (``RequestTarget``): routes see the
/// path the node will be sent, and an absolute-form target's authority takes the place of `Host`.
struct HeadRoutingRequest: RoutingRequest {
    let head: RequestHead
    let clientIP: Substring
    let target: RequestTarget

    /// - Throws: the reason the target is refused with 400.
    init(head: RequestHead, clientIP: Substring, encodedSlashes: RequestTarget.EncodedSlashes) throws(RequestTargetError) {
        // parsed before any field is set: a throw after a partial initialisation made the
        // initialiser build the value aside and copy it out (retaining what it holds again)
        let target = try RequestTarget(parsing: head.target, encodedSlashes: encodedSlashes)
        self.head = head
        self.clientIP = clientIP
        self.target = target
    }

    var method: String { head.method }
    var path: Substring { target.path }
    var query: Substring { target.query }

    var host: Substring? {
        if let authority = target.authorityHost { return authority }
        guard let field = head.hostField else { return nil }
        return RequestTarget.hostWithoutPort(head.value(head.fields[field]))
    }

    func header(_ name: String) -> Substring? {
        head.header(name)
    }

    func anyHeader(_ name: String, where test: (Substring) -> Bool) -> Bool {
        head.anyHeader(name, where: test)
    }
}
