/// What a route does with the requests it matches: send them to a service, or answer them itself.
public enum RouteAction: Sendable, Equatable {
    /// Proxy to a service (or one of its nodes), or to the targets of a split.
    case proxy(RouteTarget)
    /// `redirect`: answer with a redirect, nothing proxied.
    case redirect(Redirect)
    /// `respond`: answer with a fixed response, nothing proxied.
    case respond(FixedResponse)
    /// `static`: serve files from a directory.
    case serveFiles(StaticFiles)
}

/// `routes[].redirect`: `Location` is the rendered `to`.
public struct Redirect: Sendable, Equatable {
    public static let statuses = [301, 302, 303, 307, 308]
    public var to: ValueTemplate
    /// 301, 302, 303, 307 or 308; 302 by default (a permanent redirect is cached by browsers, so
    /// it is asked for, not assumed).
    public var status: Int

    public init(to: ValueTemplate, status: Int = 302) {
        self.to = to
        self.status = status
    }
}

/// `routes[].respond`: a response Fulcrum sends itself (a maintenance page, a health answer).
public struct FixedResponse: Sendable, Equatable {
    public var status: Int
    public var body: String
    public var contentType: String

    public init(status: Int, body: String = "", contentType: String = "text/plain; charset=utf-8") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }
}

/// How a route changes the request on its way to the node and the response on its way back.
/// Every part is optional; a route without any has no shaping at all (``isEmpty``) and pays
/// nothing for the feature.
public struct RequestShaping: Sendable, Equatable {
    /// `strip_prefix`: removed from the start of the path when the path starts with it at a
    /// segment boundary (`/api` strips `/api` and `/api/x`, not `/apix`); an empty rest is `/`.
    public var stripPrefix: String?
    /// `rewrite`: applied after `strip_prefix`.
    public var rewrite: PathRewrite?
    /// `host`: the `Host` sent to the node instead of the client's.
    public var host: String?
    public var requestHeaders = HeaderEdits()
    public var responseHeaders = HeaderEdits()

    public init(stripPrefix: String? = nil, rewrite: PathRewrite? = nil, host: String? = nil) {
        self.stripPrefix = stripPrefix
        self.rewrite = rewrite
        self.host = host
    }

    public var isEmpty: Bool {
        stripPrefix == nil && rewrite == nil && host == nil && requestHeaders.isEmpty && responseHeaders.isEmpty
    }

    /// Whether the path the node is sent may differ from the client's.
    public var changesPath: Bool { stripPrefix != nil || rewrite != nil }
}

/// `rewrite: { path_regex, to }`: a path the expression matches (it searches; anchor it with `^`
/// and `$`) is replaced as a whole by `to`, whose `$1`... are the expression's groups. A path it
/// does not match goes unchanged. The query is kept.
public struct PathRewrite: Sendable, Equatable {
    public var pathRegex: String
    public var to: ValueTemplate

    public init(pathRegex: String, to: ValueTemplate) {
        self.pathRegex = pathRegex
        self.to = to
    }
}

/// `request_headers` / `response_headers`: fields replaced (`set`: any field of that name is
/// removed, then this one added), added beside those present (`add`), or removed (`remove`).
public struct HeaderEdits: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: ValueTemplate

        public init(name: String, value: ValueTemplate) {
            self.name = name
            self.value = value
        }
    }

    public var `set`: [Field] = []
    public var add: [Field] = []
    public var remove: [String] = []

    public init(`set`: [Field] = [], add: [Field] = [], remove: [String] = []) {
        self.set = set
        self.add = add
        self.remove = remove
    }

    public var isEmpty: Bool { self.set.isEmpty && add.isEmpty && remove.isEmpty }

    /// The names of fields taken out of the message: removed ones and replaced ones.
    public var removedNames: [String] { remove + self.set.map(\.name) }

    /// The fields added, in order.
    public var addedFields: [Field] { self.set + add }
}

/// A route's ``RequestShaping`` compiled: its regular expression built once. Works out, per
/// request, the path and fields the node is sent and the fields added to the response.
public final class RequestShaper: Sendable {
    public let shaping: RequestShaping
    private let rewritePattern: PathPattern?
    /// The route's own `path_regex`, kept when a value uses its groups (`$1`...).
    private let routePattern: PathPattern?
    /// The field lists, gathered once rather than per request.
    private let removedRequestFields: [String]
    private let addedRequestFields: [HeaderEdits.Field]
    private let removedResponseFields: [String]
    private let addedResponseFields: [HeaderEdits.Field]

    /// - Parameter alsoRendering: the route's other values (a redirect's `to`), which may use the
    ///   groups of its `path_regex` too.
    /// - Precondition: `shaping` was validated (its expressions compile).
    public init(_ shaping: RequestShaping, routePathRegex: String?, alsoRendering others: [ValueTemplate] = []) {
        self.shaping = shaping
        rewritePattern = shaping.rewrite.map { try! PathPattern($0.pathRegex) }
        removedRequestFields = shaping.requestHeaders.removedNames
        addedRequestFields = shaping.requestHeaders.addedFields
        removedResponseFields = shaping.responseHeaders.removedNames
        addedResponseFields = shaping.responseHeaders.addedFields
        let usesGroups = (addedRequestFields + addedResponseFields).map(\.value).contains { $0.highestCapture > 0 }
            || others.contains { $0.highestCapture > 0 }
        routePattern = usesGroups ? routePathRegex.map { try! PathPattern($0) } : nil
    }

    /// The shaper of a route: its shaping, and the groups of its `path_regex` when its values
    /// (a redirect's `to` among them) use them.
    public convenience init(route: Route) {
        var others: [ValueTemplate] = []
        if case .redirect(let redirect) = route.action { others.append(redirect.to) }
        self.init(route.shaping, routePathRegex: route.match.path?.regex, alsoRendering: others)
    }

    /// What the shaping makes of one request.
    public struct Shaped: Sendable {
        /// The path the node is sent, when it differs from the client's.
        public var path: String?
        /// The groups values are rendered with: the rewrite's when it matched, else the route's
        /// `path_regex`'s (empty when no value uses them).
        public var captures: [Substring]
        /// Field names removed from the request (hop-by-hop and forwarding fields are Fulcrum's own).
        public var removedRequestFields: [String]
        public var addedRequestFields: [(name: String, value: String)]
        public var removedResponseFields: [String]
        public var addedResponseFields: [(name: String, value: String)]
    }

    /// The shaped path and fields for `request`.
    public func shape<Request: RoutingRequest>(_ request: Request) -> Shaped {
        let original = request.path
        var path = original
        if let prefix = shaping.stripPrefix { path = Self.strip(prefix, from: path) }
        var captures: [Substring] = routePattern?.captures(in: original) ?? []
        var rewritten: String? = nil
        if let rewrite = shaping.rewrite, let pattern = rewritePattern, let groups = pattern.captures(in: path) {
            captures = groups
            rewritten = rewrite.to.rendered(request, path: path, captures: groups)
        }
        let finalPath: Substring = rewritten.map { $0[...] } ?? path
        func render(_ fields: [HeaderEdits.Field]) -> [(name: String, value: String)] {
            fields.map { ($0.name, $0.value.rendered(request, path: finalPath, captures: captures)) }
        }
        return Shaped(
            path: rewritten ?? (path == original ? nil : String(path)), captures: captures,
            removedRequestFields: removedRequestFields, addedRequestFields: render(addedRequestFields),
            removedResponseFields: removedResponseFields, addedResponseFields: render(addedResponseFields))
    }

    /// `path` without `prefix` at a segment boundary, `/` when nothing is left.
    static func strip(_ prefix: String, from path: Substring) -> Substring {
        guard path.hasPrefix(prefix) else { return path }
        let rest = path.dropFirst(prefix.count)
        if rest.isEmpty { return "/" }
        if rest.first == "/" { return rest }
        if prefix.hasSuffix("/") { return path[path.index(before: rest.startIndex)...] }  // keeps the prefix's own slash
        return path
    }
}

/// `cors` of a route or a service: Fulcrum answers the browser's preflight requests itself and
/// adds the CORS fields to the responses of allowed origins. A request from an origin not listed
/// gets no CORS fields at all (and its preflight a 403), whatever the node sends: the node's own
/// `Access-Control-Allow-*` fields are removed on a route with a policy, so that the policy is
/// the one answer.
public struct CORSPolicy: Sendable, Equatable {
    /// Origins allowed (`https://app.example.com`, exactly as browsers send them), or `*`.
    public var origins: [String]
    /// Methods a preflight may ask for.
    public var methods: [String] = ["GET", "HEAD", "POST"]
    /// Request fields a preflight may ask for; `*` allows the ones it asks for.
    public var headers: [String] = []
    /// Response fields scripts may read (`Access-Control-Expose-Headers`).
    public var exposeHeaders: [String] = []
    /// Whether requests with credentials (cookies) are allowed; never with `*` origins.
    public var credentials = false
    /// How long a browser may keep a preflight's answer; `nil`: its own default.
    public var maxAge: Duration?

    public init(origins: [String]) {
        self.origins = origins
    }

    public var allowsAnyOrigin: Bool { origins.contains("*") }

    /// Whether `origin` may use the resource.
    public func allows(origin: Substring) -> Bool {
        allowsAnyOrigin || origins.contains { $0.utf8.elementsEqual(origin.utf8) }
    }

    /// The value of `Access-Control-Allow-Origin` for an allowed `origin`: `*` for any origin
    /// without credentials, otherwise the origin itself (with `Vary: Origin`).
    public func allowOriginValue(_ origin: Substring) -> String {
        allowsAnyOrigin && !credentials ? "*" : String(origin)
    }

    /// The CORS fields of a preflight's answer, or `nil` when the preflight is refused (origin,
    /// method or a requested field not allowed).
    public func preflightFields(origin: Substring, requestedMethod: Substring, requestedHeaders: Substring?) -> [(String, String)]? {
        guard allows(origin: origin), methods.contains(where: { $0.utf8.elementsEqual(requestedMethod.utf8) }) else { return nil }
        var fields: [(String, String)] = [("Access-Control-Allow-Origin", allowOriginValue(origin)), ("Vary", "Origin")]
        if credentials { fields.append(("Access-Control-Allow-Credentials", "true")) }
        fields.append(("Access-Control-Allow-Methods", methods.joined(separator: ", ")))
        if let requestedHeaders {
            let asked = requestedHeaders.split(separator: ",").map { $0.trimmingSpaces.lowercased() }.filter { !$0.isEmpty }
            if headers.contains("*") {
                if !asked.isEmpty { fields.append(("Access-Control-Allow-Headers", asked.joined(separator: ", "))) }
            } else {
                let allowed = Set(headers.map { $0.lowercased() })
                guard asked.allSatisfy(allowed.contains) else { return nil }
                if !headers.isEmpty { fields.append(("Access-Control-Allow-Headers", headers.joined(separator: ", "))) }
            }
        }
        if let maxAge { fields.append(("Access-Control-Max-Age", String(maxAge.components.seconds))) }
        return fields
    }

    /// The CORS fields added to the response of an allowed `origin`.
    public func responseFields(origin: Substring) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [("Access-Control-Allow-Origin", allowOriginValue(origin)), ("Vary", "Origin")]
        if credentials { fields.append(("Access-Control-Allow-Credentials", "true")) }
        if !exposeHeaders.isEmpty { fields.append(("Access-Control-Expose-Headers", exposeHeaders.joined(separator: ", "))) }
        return fields
    }

    /// The node's fields a policy replaces.
    public static let replacedResponseFields = [
        "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
        "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age",
    ]
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
