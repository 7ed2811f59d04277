import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open files. A proxied request holds two sockets, so the usual soft
/// limit of 1024 would stop a busy balancer at about 500 connections (new connections and
/// connects to nodes failing with EMFILE); serving raises the soft limit to the hard one, as
/// HAProxy and Go servers do, and ``ConnectionLimit`` derives its default from it.
public enum OpenFileLimit {
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    /// The soft limit in force, or `nil` if it cannot be read.
    static var soft: Int? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return Int(clamping: min(limit.rlim_cur, 1 << 40))
    }

    /// Raises the soft limit to the hard limit, and logs the limit in force.
    public static func raise(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            guard setrlimit(resource, &limit) == 0 else {
                logger.warning("cannot raise the open file limit", metadata: ["soft": "\(before)", "hard": "\(limit.rlim_max)", "errno": "\(errno)"])
                return
            }
        }
        logger.info("open file limit", metadata: ["limit": "\(limit.rlim_cur)", "was": "\(before)"])
    }
}
