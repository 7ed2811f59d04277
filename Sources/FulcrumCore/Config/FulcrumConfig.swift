/// A complete, validated Fulcrum configuration: what to listen on, the services and their nodes,
/// the routes that lead to them, and how the proxy behaves. Parsed from YAML or JSON by
/// ``FulcrumConfig/parse(_:)``; an instance only exists if every check passed.
public struct FulcrumConfig: Sendable, Equatable {
    /// The addresses the data plane accepts client connections on.
    public var listeners: [Listener]
    /// Event-loop threads serving traffic; `nil` means one per CPU core.
    public var workers: Int?
    /// Client connections open at once, across listeners and event loops; at the cap, listeners
    /// stop accepting until one closes. `nil`: half the process's open-file limit (a proxied
    /// connection holds two descriptors).
    public var maxConnections: Int?
    /// Client connections one client address may hold open at once; more are closed at accept.
    /// `nil`: no limit per address (clients behind one NAT or proxy share an address).
    public var maxConnectionsPerClient: Int?
    /// Connect, response and idle timeouts.
    public var timeouts: Timeouts
    /// Whether one access-log line is written per request.
    public var accessLog: Bool
    /// The request ID header passed through when present and generated when absent.
    public var requestIDHeader: String
    /// How long a graceful shutdown (SIGTERM) waits for in-flight requests.
    public var drainTimeout: Duration
    /// What a `%2F` in a request path does: refused with 400 by default (see ``RequestTarget``).
    public var encodedSlashes: RequestTarget.EncodedSlashes = .refuse
    /// Limits of HTTP/2 client connections.
    public var http2 = HTTP2Limits()
    /// Services in declaration order.
    public var services: [Service]
    /// Routes in declaration order.
    public var routes: [Route]
    /// Where a request goes when no route matches; `nil` answers 404.
    public var defaultTarget: RouteTarget?
    /// Bodies for the responses Fulcrum itself produces, by status code.
    public var errorPages: [Int: ErrorPage]
    /// `stored_certificates`: certificates uploaded through the admin API, kept in the store and
    /// served by every TLS listener (before the listener's own files).
    public var storedCertificates: [StoredCertificateReference] = []
    /// `access_rules`: rules every request meets first, before routing.
    public var accessRules: [AccessRule] = []
    /// `cc`: flood protection, before routing.
    public var cc: [CCRule] = []
    /// `trusted_proxies`: connections from these addresses have their client taken from
    /// `X-Forwarded-For` (the right-most address not in these ranges); for every other
    /// connection the client is the socket's address. Access rules, CC, rate limits, hashing,
    /// splits, `X-Real-IP` and the access log all use that client.
    public var trustedProxies: [AddressRange] = []

    public init(
        listeners: [Listener], workers: Int? = nil, maxConnections: Int? = nil, timeouts: Timeouts = Timeouts(), accessLog: Bool = true,
        requestIDHeader: String = "X-Request-ID", drainTimeout: Duration = .seconds(30),
        services: [Service], routes: [Route] = [], defaultTarget: RouteTarget? = nil, errorPages: [Int: ErrorPage] = [:]
    ) {
        self.listeners = listeners
        self.workers = workers
        self.maxConnections = maxConnections
        self.timeouts = timeouts
        self.accessLog = accessLog
        self.requestIDHeader = requestIDHeader
        self.drainTimeout = drainTimeout
        self.services = services
        self.routes = routes
        self.defaultTarget = defaultTarget
        self.errorPages = errorPages
    }

    /// The service called `name`, if any.
    public func service(named name: String) -> Service? {
        services.first { $0.name == name }
    }
}

/// An address and port to accept connections on.
public struct Listener: Sendable, Equatable {
    public var address: String
    public var port: Int
    /// TLS on this listener (`listen[].tls`): clients speak HTTPS; `nil` for plaintext HTTP.
    public var tls: ListenerTLS?
    /// `listen[].redirect_to_https`: every request is answered with a 308 to the same host, path
    /// and query over HTTPS on this port, and nothing is proxied.
    public var redirectToHTTPS: Int?
    /// `listen[].h2c`: a plaintext listener also speaks HTTP/2 to clients that start with its
    /// connection preface (prior knowledge, as `curl --http2-prior-knowledge`, gRPC clients and
    /// proxies in front do); other connections are HTTP/1.1.
    public var h2c: Bool

    /// `address:port`, as written: the listener's name in logs and, across reloads, its identity.
    public var endpoint: String { "\(address):\(port)" }

    public init(address: String = "0.0.0.0", port: Int, tls: ListenerTLS? = nil, redirectToHTTPS: Int? = nil, h2c: Bool = false) {
        self.address = address
        self.port = port
        self.tls = tls
        self.redirectToHTTPS = redirectToHTTPS
        self.h2c = h2c
    }
}

/// An application protocol a TLS listener offers in ALPN.
public enum ApplicationProtocol: String, Sendable, Equatable, CaseIterable {
    case h2 = "h2"
    case http1 = "http/1.1"
}

/// `http2`: the limits of HTTP/2 client connections, on every listener that speaks it.
public struct HTTP2Limits: Sendable, Equatable {
    /// Streams a client may have open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    public var maxConcurrentStreams = 100
    /// The largest header list accepted, in bytes as HTTP/2 counts them (`SETTINGS_MAX_HEADER_LIST_SIZE`).
    public var maxHeaderListSize = 16_384
    /// The HPACK dynamic table a client may make Fulcrum keep per connection (`SETTINGS_HEADER_TABLE_SIZE`).
    public var headerTableSize = 4096
    /// Streams a client may reset (RST_STREAM) within ``resetWindow`` before its connection is
    /// closed with GOAWAY (ENHANCE_YOUR_CALM): the defence against rapid reset (CVE-2023-44487),
    /// where opening and cancelling streams in a loop makes a server start work it never finishes.
    public var maxResets = 200
    public var resetWindow: Duration = .seconds(30)

    public init() {}
}

/// The TLS settings of a listener: which certificates it serves and which protocol versions it
/// accepts. Certificates are files (PEM), read when the configuration is compiled and again on
/// every reload (SIGHUP), so a renewed certificate is picked up without a restart; with a store,
/// every listener also serves the ``FulcrumConfig/storedCertificates``.
public struct ListenerTLS: Sendable, Equatable {
    /// The certificate files the listener may present; the one for a handshake is chosen by the
    /// name the client asks for (SNI) among each certificate's own names (its subject alternative
    /// names). May be empty when stored certificates are served.
    public var certificates: [CertificateFiles]
    /// The certificate presented to clients that send no name or a name no certificate has: the
    /// `cert` path of one of ``certificates`` or the name of a stored certificate; `nil` refuses
    /// their handshake.
    public var defaultCertificate: String?
    /// The oldest protocol version accepted.
    public var minVersion: TLSVersion
    /// The application protocols offered in ALPN, preferred first; a client that offers none of
    /// them (or uses no ALPN) gets HTTP/1.1 when it is listed, and is refused otherwise.
    public var alpn: [ApplicationProtocol]

    public init(
        certificates: [CertificateFiles], defaultCertificate: String? = nil, minVersion: TLSVersion = .v1_2,
        alpn: [ApplicationProtocol] = [.h2, .http1]
    ) {
        self.certificates = certificates
        self.defaultCertificate = defaultCertificate
        self.minVersion = minVersion
        self.alpn = alpn
    }

    /// The index in ``certificates`` of ``defaultCertificate``, when it names a file.
    public var defaultIndex: Int? {
        defaultCertificate.flatMap { path in certificates.firstIndex { $0.cert == path } }
    }
}

/// `stored_certificates.NAME`: a certificate chain and key uploaded through the admin API. The
/// configuration holds only the name and the digest that identifies the upload in the store; the
/// chain and the private key stay in the store (never in a configuration document, an export, a
/// diff or the audit log). Versions are immutable, so a rollback serves the upload the older
/// version named.
public struct StoredCertificateReference: Sendable, Equatable {
    public var name: String
    /// SHA-256 (64 lowercase hex digits) of the chain's DER encoding, as the store keys it.
    public var chainSHA256: String

    public init(name: String, chainSHA256: String) {
        self.name = name
        self.chainSHA256 = chainSHA256
    }
}

/// The PEM text of a certificate chain and its private key, as uploaded and stored. Its
/// description never shows the key, so that printing or logging one cannot leak it.
public struct CertificateBundle: Sendable, Equatable, CustomStringConvertible {
    /// The leaf certificate first, then its intermediates.
    public var chainPEM: String
    public var keyPEM: String

    public init(chainPEM: String, keyPEM: String) {
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
    }

    public var description: String { "certificate bundle (\(chainPEM.utf8.count) bytes of chain; key withheld)" }
}

/// A certificate chain and its private key, as PEM files. Relative paths are taken from the
/// working directory of the `fulcrum` process.
public struct CertificateFiles: Sendable, Hashable {
    /// The leaf certificate first, then the intermediates that lead to a root.
    public var cert: String
    /// The leaf certificate's private key (RSA or ECDSA).
    public var key: String

    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}

/// How Fulcrum speaks TLS to a node. The node's certificate is verified by default, as a browser
/// would: a gateway that forwards to whoever answers on the node's address hands its clients'
/// requests (and credentials) to anyone on the path.
public struct NodeTLS: Sendable, Hashable {
    /// Whether the node's certificate must chain to a trusted root and carry the expected name.
    public var verify: Bool
    /// The roots trusted for the node (PEM); `nil` trusts the system's bundle.
    public var caFile: String?
    /// The name sent in SNI and checked in the node's certificate; `nil` uses the node's host
    /// (an IP address host is checked against the certificate's IP addresses and sends no SNI).
    public var serverName: String?
    /// A certificate Fulcrum presents to nodes that ask for one (mutual TLS).
    public var clientCertificate: CertificateFiles?

    public init(verify: Bool = true, caFile: String? = nil, serverName: String? = nil, clientCertificate: CertificateFiles? = nil) {
        self.verify = verify
        self.caFile = caFile
        self.serverName = serverName
        self.clientCertificate = clientCertificate
    }
}

/// A TLS protocol version a listener may be limited to. TLS 1.0 and 1.1 are not offered at all.
public enum TLSVersion: String, Sendable, Equatable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// The timeouts of the data plane.
public struct Timeouts: Sendable, Equatable {
    /// Establishing a TCP connection to a node.
    public var connect: Duration
    /// From the end of sending a request upstream to the response head arriving (then 504).
    public var upstreamResponse: Duration
    /// A client keep-alive connection with no request in progress is closed after this.
    public var clientIdle: Duration
    /// A request head must arrive whole within this, counted from the connection's accept for
    /// its first request and from the first byte for later ones (HAProxy's `timeout
    /// http-request`): a client that sends its head a byte at a time is answered 408 and closed,
    /// rather than holding a connection for as long as each byte keeps it from being idle.
    public var clientHead: Duration = .seconds(10)
    /// An idle pooled upstream connection is closed after this.
    public var upstreamIdle: Duration
    /// Mid-exchange, a client that sends none of its request body and takes none of the response
    /// for this long is disconnected (with 408 when no response has begun).
    public var clientStall: Duration
    /// Mid-exchange, a node that takes none of the request body and sends none of its response
    /// body for this long is disconnected (504 when no response has begun; otherwise the client
    /// connection closes, the only signal left).
    public var upstreamStall: Duration
    /// A connection switched to another protocol (WebSocket) that carries nothing either way for
    /// this long is closed, with its node's connection.
    public var tunnelIdle: Duration

    public init(
        connect: Duration = .seconds(3), upstreamResponse: Duration = .seconds(60),
        clientIdle: Duration = .seconds(60), upstreamIdle: Duration = .seconds(60),
        clientStall: Duration = .seconds(60), upstreamStall: Duration = .seconds(60), tunnelIdle: Duration = .seconds(3600)
    ) {
        self.connect = connect
        self.upstreamResponse = upstreamResponse
        self.clientIdle = clientIdle
        self.upstreamIdle = upstreamIdle
        self.clientStall = clientStall
        self.upstreamStall = upstreamStall
        self.tunnelIdle = tunnelIdle
    }
}

/// A named group of interchangeable nodes and the strategy that picks one per request.
public struct Service: Sendable, Equatable {
    public var name: String
    public var strategy: BalancingStrategy
    public var nodes: [Node]
    /// Passive health checking (outlier detection) of real traffic; `nil` when off.
    public var passiveHealth: PassiveHealth?
    /// Active health checking (probes); `nil` when off.
    public var healthCheck: ActiveHealthCheck?
    /// The service's circuit breaker; `nil` when off.
    public var circuitBreaker: CircuitBreakerSettings?
    /// A rate limit on all requests to the service; `nil` when off.
    public var rateLimit: RateLimit?
    /// Most requests in flight to the service (all event loops together); `nil` for no limit.
    public var maxInFlight: Int?
    /// What to do when every node is ejected or down.
    public var whenNoNode: NoNodePolicy
    /// A node that comes back (healthy again, or added) ramps its weight up over this time; `nil`: at once.
    public var slowStart: Duration?
    /// `access_rules` of requests routed to the service, after the top-level ones.
    public var accessRules: [AccessRule] = []
    /// `cors` of the routes to this service that have none of their own.
    public var cors: CORSPolicy?

    public init(
        name: String, strategy: BalancingStrategy = .roundRobin, nodes: [Node], passiveHealth: PassiveHealth? = nil,
        whenNoNode: NoNodePolicy = .reject
    ) {
        self.name = name
        self.strategy = strategy
        self.nodes = nodes
        self.passiveHealth = passiveHealth
        self.whenNoNode = whenNoNode
    }

    /// The index of the node called `name`, if any.
    public func nodeIndex(named name: String) -> Int? {
        nodes.firstIndex { $0.name == name }
    }
}

/// One upstream server of a service.
public struct Node: Sendable, Equatable {
    /// Unique within its service; used by routes, logs and headers.
    public var name: String
    public var host: String
    public var port: Int
    /// Relative share of traffic; 0 takes the node out of rotation (it can still be pinned).
    public var weight: Int
    public var tags: [String]
    /// A draining node receives no new balanced requests (as if its weight were 0) but keeps its
    /// weight, its pinned routes and its health checks; requests in flight finish.
    public var drain: Bool
    /// Set when the node is reached over TLS.
    public var tls: NodeTLS?

    public init(
        name: String, host: String, port: Int, weight: Int = 1, tags: [String] = [], drain: Bool = false, tls: NodeTLS? = nil
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.weight = weight
        self.tags = tags
        self.drain = drain
        self.tls = tls
    }

    /// The weight balancing uses: 0 while draining.
    public var effectiveWeight: Int { drain ? 0 : weight }
}

/// How a service chooses a node for each request.
public enum BalancingStrategy: Sendable, Equatable {
    /// Smooth weighted round robin (nginx's algorithm): exact shares, evenly interleaved.
    case roundRobin
    /// Weighted random choice.
    case random
    /// Power of two random choices, keeping the one with fewer requests in flight (weighted).
    case leastConnections
    /// Power of two random choices over peak-EWMA response time × requests in flight (weighted).
    case latency(PeakEWMA.Settings)
    /// Consistent hashing of a request key onto a ring of nodes.
    case hash(HashKey)
    /// Always the named node.
    case pinned(node: String)

    /// The strategies by name, without their settings: the one list of their configuration
    /// spellings, which parsing, the OpenAPI document and (through it) the console take.
    public enum Kind: String, Sendable, CaseIterable {
        case roundRobin = "round_robin"
        case random
        case leastConnections = "least_conn"
        case hash
        case pinned
        case latency
    }

    public var kind: Kind {
        switch self {
        case .roundRobin: return .roundRobin
        case .random: return .random
        case .leastConnections: return .leastConnections
        case .latency: return .latency
        case .hash: return .hash
        case .pinned: return .pinned
        }
    }

    /// The configuration spelling of the strategy.
    public var name: String { kind.rawValue }
}

/// The part of a request that consistent hashing uses as its key.
public enum HashKey: Sendable, Equatable, CustomStringConvertible {
    case clientIP
    case header(String)
    case cookie(String)
    case query(String)
    case path

    /// Parses `client_ip`, `path`, `header:NAME`, `cookie:NAME` or `query:NAME`.
    public init?(parsing text: String) {
        switch text {
        case "client_ip": self = .clientIP
        case "path": self = .path
        default:
            guard let colon = text.firstIndex(of: ":") else { return nil }
            let name = String(text[text.index(after: colon)...])
            guard !name.isEmpty else { return nil }
            switch text[..<colon] {
            case "header": self = .header(name)
            case "cookie": self = .cookie(name)
            case "query": self = .query(name)
            default: return nil
            }
        }
    }

    public var description: String {
        switch self {
        case .clientIP: return "client_ip"
        case .path: return "path"
        case .header(let name): return "header:\(name)"
        case .cookie(let name): return "cookie:\(name)"
        case .query(let name): return "query:\(name)"
        }
    }
}

/// A named rule: requests that satisfy `match` get the route's ``action``: most go to a service
/// (``target``); some are answered by Fulcrum itself (a redirect, a fixed response).
public struct Route: Sendable, Equatable {
    public var name: String
    public var match: RouteMatch
    public var action: RouteAction
    /// `strip_prefix`, `rewrite`, `host`, `request_headers`, `response_headers`.
    public var shaping = RequestShaping()
    /// A rate limit on the requests this route matches; `nil` when off.
    public var rateLimit: RateLimit?
    /// Most requests of this route in flight (all event loops together); `nil` for no limit.
    public var maxInFlight: Int?
    /// A traffic split between targets (canary release); `target` is then its first target.
    public var split: TrafficSplit?
    /// `access_rules` of this route's requests, after the top-level and the service's.
    public var accessRules: [AccessRule] = []
    /// `cors`; `nil`: the service's, if any.
    public var cors: CORSPolicy?

    public init(name: String, match: RouteMatch, target: RouteTarget) {
        self.init(name: name, match: match, action: .proxy(target))
    }

    public init(name: String, match: RouteMatch, action: RouteAction) {
        self.name = name
        self.match = match
        self.action = action
    }

    /// Where the route proxies to; `nil` for a route Fulcrum answers itself.
    public var target: RouteTarget? {
        if case .proxy(let target) = action { return target }
        return nil
    }
}

/// How a route matches the request path.
public enum PathMatch: Sendable, Equatable {
    /// The path (without query) equals the string.
    case exact(String)
    /// The path starts with the string; among prefixes the longest wins.
    case prefix(String)
    /// The regular expression matches somewhere in the path (anchor it with `^` and `$`).
    case regex(String)

    /// The expression of a `path_regex`.
    public var regex: String? {
        if case .regex(let source) = self { return source }
        return nil
    }
}

/// The conditions of a route. Every condition present must hold; absent ones always hold.
public struct RouteMatch: Sendable, Equatable {
    /// Accepted host names (without port, case-insensitive); `*.example.com` matches any subdomain.
    public var hosts: [String]
    /// The path condition; `nil` matches every path (like the prefix `/`).
    public var path: PathMatch?
    /// Accepted methods (upper case).
    public var methods: [String]
    /// Header name → accepted values.
    public var headers: [ValueCondition]
    /// Query parameter name → accepted values.
    public var query: [ValueCondition]
    /// Cookie name → accepted values.
    public var cookies: [ValueCondition]
    /// A condition on the body; such a route is tried only after the others (see ``Router``).
    public var body: BodyCondition?

    public init(
        hosts: [String] = [], path: PathMatch? = nil, methods: [String] = [],
        headers: [ValueCondition] = [], query: [ValueCondition] = [], cookies: [ValueCondition] = []
    ) {
        self.hosts = hosts
        self.path = path
        self.methods = methods
        self.headers = headers
        self.query = query
        self.cookies = cookies
    }
}

/// A named request value and the values that satisfy it.
public struct ValueCondition: Sendable, Equatable {
    public var name: String
    /// Any of these values satisfies the condition.
    public var values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// The service (and optionally the single node) a route sends traffic to.
public struct RouteTarget: Sendable, Equatable {
    public var service: String
    /// When set, the request goes to this node only, bypassing the service's strategy.
    public var node: String?

    public init(service: String, node: String? = nil) {
        self.service = service
        self.node = node
    }
}

/// The response Fulcrum sends for one of its own statuses (404, 502, 503, 504...).
public struct ErrorPage: Sendable, Equatable {
    public var contentType: String
    public var body: String

    public init(contentType: String = "text/plain; charset=utf-8", body: String) {
        self.contentType = contentType
        self.body = body
    }
}

/// Passive health settings of a service: which outcomes count as failures and how ejection works.
public struct PassiveHealth: Sendable, Equatable {
    /// Ejection thresholds and times.
    public var policy: OutlierDetection.Policy
    /// Response statuses that count as failures (connection errors and timeouts always do).
    public var failureStatuses: [Int]

    public init(policy: OutlierDetection.Policy = .init(), failureStatuses: [Int] = [502, 503, 504]) {
        self.policy = policy
        self.failureStatuses = failureStatuses
    }
}

/// What a service does when no node is usable.
public enum NoNodePolicy: String, Sendable, Equatable, CaseIterable {
    /// Answer 503 at once with a clear body.
    case reject
    /// Ignore health and spread over all nodes.
    case panic
}

/// A service's circuit breaker: its policy and which response statuses count as failures
/// (connection errors and timeouts always do).
public struct CircuitBreakerSettings: Sendable, Equatable {
    public var policy: CircuitBreaker.Policy
    public var failureStatuses: [Int]

    public init(policy: CircuitBreaker.Policy = .init(), failureStatuses: [Int] = [502, 503, 504]) {
        self.policy = policy
        self.failureStatuses = failureStatuses
    }
}
