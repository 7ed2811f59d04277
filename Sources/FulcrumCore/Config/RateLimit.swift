/// A rate limit attached to a route or a service.
public struct RateLimit: Sendable, Equatable {
    public enum Algorithm: Sendable, Equatable {
        /// `rate` requests per second, bursts of up to `burst`.
        case tokenBucket(rate: Double, burst: Int)
        /// `rate` requests per second, smoothed: excess requests wait up to `maxDelay`, beyond that refused.
        case leakyBucket(rate: Double, maxDelay: Duration)
        /// At most `limit` requests per sliding `window`.
        case slidingWindow(limit: Int, window: Duration)

        /// The algorithms by their configuration spelling, without their settings.
        public enum Kind: String, Sendable, CaseIterable {
            case tokenBucket = "token_bucket"
            case leakyBucket = "leaky_bucket"
            case slidingWindow = "sliding_window"
        }
    }

    /// What one limiter state is kept for.
    public enum Key: Sendable, Equatable, CustomStringConvertible {
        case clientIP
        case header(String)
        case cookie(String)
        case query(String)
        /// One state for the whole route or service.
        case whole

        public var description: String {
            switch self {
            case .clientIP: return "client_ip"
            case .header(let name): return "header:\(name)"
            case .cookie(let name): return "cookie:\(name)"
            case .query(let name): return "query:\(name)"
            case .whole: return "whole"
            }
        }
    }

    public var algorithm: Algorithm
    public var key: Key = .clientIP
    /// Most keys tracked per event loop (memory bound: about 100 bytes per key).
    public var maxKeys: Int = 100_000
    /// Body of the 429 response; a default text when `nil`.
    public var body: String?

    public init(algorithm: Algorithm, key: Key = .clientIP, maxKeys: Int = 100_000, body: String? = nil) {
        self.algorithm = algorithm
        self.key = key
        self.maxKeys = maxKeys
        self.body = body
    }

    /// The allowance advertised in `RateLimit-Limit`: the burst, the queue length or the window limit.
    public var advertisedLimit: Int {
        switch algorithm {
        case .tokenBucket(_, let burst): return burst
        case .leakyBucket(let rate, let maxDelay): return 1 + Int(Double(maxDelay.milliseconds) / 1000 * rate)
        case .slidingWindow(let limit, _): return limit
        }
    }
}
