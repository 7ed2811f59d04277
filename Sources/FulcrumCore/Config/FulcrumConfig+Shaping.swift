/// Parsing of what a route does besides choosing a node: redirects, fixed responses, and the
/// changes it makes to requests and responses.
extension ConfigDocumentParser {
    func redirect(_ node: ConfigDocument, _ path: String, captures: Int) -> Redirect? {
        guard let object = reader.object(node, path, allowed: ["to", "status"]) else { return nil }
        let to = object.require("to").flatMap { template($0, object.path("to"), captures: captures) }
        var status = 302
        if let statusNode = object["status"], let value = reader.int(statusNode, object.path("status"), in: 300...399) {
            if Redirect.statuses.contains(value) { status = value } else {
                reader.fail(object.path("status"), "a redirect's status is one of \(Redirect.statuses.map(String.init).joined(separator: ", "))")
            }
        }
        if let literal = to?.literal, literal.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) {
            reader.fail(object.path("to"), "a Location may not hold spaces or control characters")
        }
        return to.map { Redirect(to: $0, status: status) }
    }

    func fixedResponse(_ node: ConfigDocument, _ path: String) -> FixedResponse? {
        guard let object = reader.object(node, path, allowed: ["status", "body", "content_type"]),
            let statusNode = object.require("status"), let status = reader.int(statusNode, object.path("status"), in: 200...599)
        else { return nil }
        var response = FixedResponse(status: status)
        if (300...399).contains(status) {
            reader.fail(object.path("status"), "use 'redirect' for a 3xx response: it sets the Location")
        }
        if let bodyNode = object["body"], let body = reader.string(bodyNode, object.path("body"), allowEmpty: true) {
            response.body = body
        }
        if let typeNode = object["content_type"], let type = reader.string(typeNode, object.path("content_type")) {
            if isFieldValue(type) { response.contentType = type } else {
                reader.fail(object.path("content_type"), "not a valid header value")
            }
        }
        return response
    }

    func bodyCondition(_ node: ConfigDocument, _ path: String) -> BodyCondition? {
        guard let object = reader.object(node, path, allowed: ["regex", "json", "max_bytes"]) else { return nil }
        var maxBytes = BodyCondition.defaultMaxBytes
        if let sizeNode = object["max_bytes"] {
            if let text = sizeNode.scalarText, let size = Self.byteSize(text), (1...(16 << 20)).contains(size) { maxBytes = size } else {
                reader.fail(object.path("max_bytes"), "expected a size from 1 byte to 16MiB (4096, 64KiB, 1MiB)")
            }
        }
        let kinds = ["regex", "json"].filter { object[$0] != nil }
        guard kinds.count == 1 else {
            reader.fail(path, "a body condition has one of regex and json")
            return nil
        }
        if let regexNode = object["regex"], let source = reader.string(regexNode, object.path("regex")) {
            if let problem = PathPattern.compileError(source) {
                reader.fail(object.path("regex"), "invalid regular expression: \(problem)")
                return nil
            }
            return BodyCondition(test: .regex(source), maxBytes: maxBytes)
        }
        guard let jsonNode = object["json"], let fields = reader.object(jsonNode, object.path("json"), allowed: ["path", "equals"]),
            let pathNode = fields.require("path"), let keyPath = reader.string(pathNode, fields.path("path")),
            let equalsNode = fields.require("equals"), let equals = reader.string(equalsNode, fields.path("equals"), allowEmpty: true)
        else { return nil }
        let keys = keyPath.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if keys.contains(where: \.isEmpty) {
            reader.fail(fields.path("path"), "'\(keyPath)' is not a path of keys separated by '.'")
            return nil
        }
        return BodyCondition(test: .json(path: keys, equals: equals), maxBytes: maxBytes)
    }

    /// `4096`, `64KiB`, `1MiB` (also `KB`/`MB` as 1000s).
    static func byteSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("KB", 1000), ("MB", 1_000_000), ("B", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Int(text.dropLast(suffix.count)).map { $0 * factor }
        }
        return Int(text)
    }

    func staticFiles(_ node: ConfigDocument, _ path: String) -> StaticFiles? {
        guard let object = reader.object(node, path, allowed: ["root", "index"]),
            let rootNode = object.require("root"), let root = reader.string(rootNode, object.path("root"))
        else { return nil }
        var files = StaticFiles(root: root)
        if let indexNode = object["index"] {
            if case .null = indexNode { files.index = nil } else if let index = reader.string(indexNode, object.path("index")) {
                if index.contains("/") || index == ".." || index == "." {
                    reader.fail(object.path("index"), "an index is a file name in the directory, without '/'")
                } else {
                    files.index = index
                }
            }
        }
        return files
    }

    /// The shaping fields of a route's mapping.
    func shaping(_ object: ConfigObject, pathCaptures: Int) -> RequestShaping {
        var shaping = RequestShaping()
        if let node = object["strip_prefix"], let prefix = reader.string(node, object.path("strip_prefix")) {
            if prefix.first != "/" || prefix == "/" {
                reader.fail(object.path("strip_prefix"), "a prefix to strip starts with '/' and is more than '/'")
            } else if prefix.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
                reader.fail(object.path("strip_prefix"), "a path prefix has no spaces, '?', '#' or control characters")
            } else {
                shaping.stripPrefix = prefix
            }
        }
        if let node = object["rewrite"], let fields = reader.object(node, object.path("rewrite"), allowed: ["path_regex", "to"]),
            let regexNode = fields.require("path_regex"), let source = reader.string(regexNode, fields.path("path_regex")),
            let toNode = fields.require("to")
        {
            switch PathPattern.groupCount(source) {
            case .failure(let error):
                reader.fail(fields.path("path_regex"), error.reason)
            case .success(let groups):
                if let to = template(toNode, fields.path("to"), captures: groups) {
                    if to.parts.contains(where: { $0 == .query || $0 == .pathAndQuery }) {
                        reader.fail(fields.path("to"), "the rewritten path keeps the query; $query has no place in it")
                    } else if case .literal(let text)? = to.parts.first, text.first == "/" {
                        if text.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
                            reader.fail(fields.path("to"), "a path has no spaces, '?', '#' or control characters")
                        } else {
                            shaping.rewrite = PathRewrite(pathRegex: source, to: to)
                        }
                    } else if to.parts.first == .path {
                        shaping.rewrite = PathRewrite(pathRegex: source, to: to)
                    } else {
                        reader.fail(fields.path("to"), "a rewritten path starts with '/' (or $path)")
                    }
                }
            }
        }
        if let node = object["host"], let host = reader.string(node, object.path("host")) {
            if HTTPSyntax.isHost(host) || Self.isHostAndPort(host) { shaping.host = host } else {
                reader.fail(object.path("host"), "'\(host)' is not a host name or address (with an optional :port)")
            }
        }
        let captures = max(pathCaptures, shaping.rewrite.map { (try? PathPattern.groupCount($0.pathRegex).get()) ?? 0 } ?? 0)
        if let node = object["request_headers"] {
            shaping.requestHeaders = headerEdits(node, object.path("request_headers"), captures: captures, direction: .request)
        }
        if let node = object["response_headers"] {
            shaping.responseHeaders = headerEdits(node, object.path("response_headers"), captures: captures, direction: .response)
        }
        return shaping
    }

    private static func isHostAndPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), !text.hasSuffix("]"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return false }
        return HTTPSyntax.isHost(String(text[..<colon]))
    }

    enum FieldDirection {
        case request, response
    }

    /// Fields Fulcrum writes itself, which a route may not set or remove: they frame the message,
    /// describe the connection, or carry what Fulcrum vouches for (the client's address).
    static func managedFieldReason(_ name: String, _ direction: FieldDirection) -> String? {
        switch name.lowercased() {
        case "content-length", "transfer-encoding": return "it frames the body, and Fulcrum writes it for the body it sends"
        case "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection":
            return "it describes one connection and is never forwarded"
        case "host": return direction == .request ? "use the route's 'host' field" : nil
        case "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host":
            return direction == .request ? "Fulcrum sets it from the connection, so that a node can trust it" : nil
        default: return nil
        }
    }

    private func headerEdits(_ node: ConfigDocument, _ path: String, captures: Int, direction: FieldDirection) -> HeaderEdits {
        guard let object = reader.object(node, path, allowed: ["set", "add", "remove"]) else { return HeaderEdits() }
        var edits = HeaderEdits()
        func fields(_ key: String) -> [HeaderEdits.Field] {
            guard let node = object[key] else { return [] }
            var result: [HeaderEdits.Field] = []
            for (name, valueNode) in reader.namedEntries(node, object.path(key)) {
                let fieldPath = "\(object.path(key)).\(name)"
                guard checkFieldName(name, fieldPath, direction) else { continue }
                if let value = template(valueNode, fieldPath, captures: captures) {
                    if let literal = value.literal, !isFieldValue(literal) {
                        reader.fail(fieldPath, "not a valid header value (no control characters, no leading or trailing space)")
                    } else {
                        result.append(HeaderEdits.Field(name: name, value: value))
                    }
                }
            }
            return result
        }
        edits.set = fields("set")
        edits.add = fields("add")
        if let removeNode = object["remove"], let names = reader.strings(removeNode, object.path("remove")) {
            for (index, name) in names.enumerated() where checkFieldName(name, "\(object.path("remove"))[\(index)]", direction) {
                edits.remove.append(name)
            }
        }
        return edits
    }

    private func checkFieldName(_ name: String, _ path: String, _ direction: FieldDirection) -> Bool {
        guard HTTPSyntax.isToken(name) else {
            reader.fail(path, "'\(name)' is not a valid header name")
            return false
        }
        if let reason = Self.managedFieldReason(name, direction) {
            reader.fail(path, "'\(name)' cannot be changed here: \(reason)")
            return false
        }
        return true
    }

    /// A field value as RFC 9110 allows it: visible characters, spaces and tabs inside.
    private func isFieldValue(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        if let first = bytes.first, first == 0x20 || first == 0x09 { return false }
        if let last = bytes.last, last == 0x20 || last == 0x09 { return false }
        return bytes.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// A value with variables; `captures` is how many groups the regular expression in scope has.
    func template(_ node: ConfigDocument, _ path: String, captures: Int) -> ValueTemplate? {
        guard let text = reader.string(node, path, allowEmpty: true) else { return nil }
        do {
            return try ValueTemplate(parsing: text, captures: captures)
        } catch {
            reader.fail(path, error.reason)
            return nil
        }
    }
}
