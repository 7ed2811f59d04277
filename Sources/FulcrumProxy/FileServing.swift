import FulcrumCore
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file, closed when the last holder lets go: the connection serving it and a read in
/// flight on the thread pool both hold it, so a client that leaves mid-read cannot have the
/// descriptor closed (and reused by another open) under the read.
final class OpenFile: @unchecked Sendable {
    // immutable after init; the descriptor is only read by pread, which is safe from any thread
    let descriptor: Int32

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        _ = close(descriptor)
    }
}

/// The blocking file-system work of static routes: each function runs on NIO's thread pool for
/// blocking I/O (``NIOThreadPool/singleton``), never on an event loop.
enum FileServing {
    struct Found: Sendable {
        let file: OpenFile
        let size: Int64
        /// Seconds since 1970.
        let modified: Int64
        /// The path served, for its media type (the index file for a directory).
        let path: String
    }

    enum Lookup: Sendable {
        case found(Found)
        /// A directory asked for without its trailing slash: redirected to it, so that its
        /// index's relative links resolve.
        case directoryWithoutSlash
        case notFound
        /// The path leads outside the root (through a symbolic link).
        case outsideRoot
    }

    struct RootError: Error {
        let message: String
    }

    /// The root with its symbolic links resolved, checked to be a directory.
    static func resolveRoot(_ root: String) -> Result<String, RootError> {
        guard let resolved = realPath(root) else { return .failure(RootError(message: "'\(root)' does not exist or cannot be read")) }
        var info = stat()
        guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            return .failure(RootError(message: "'\(root)' is not a directory"))
        }
        return .success(resolved)
    }

    /// Finds and opens the file `relative` (already checked by ``StaticFiles/relativePath(_:)``)
    /// under `root`. The path is resolved first and must stay under the root, so a symbolic link
    /// inside the root that points out of it is refused; the resolved path is opened with
    /// `O_NOFOLLOW`, so a link swapped in after the check is not followed either.
    static func open(root: String, relative: String, requestEndsWithSlash: Bool, index: String?) -> Lookup {
        let candidate = relative.isEmpty ? root : root + "/" + relative
        guard let resolved = realPath(candidate) else { return .notFound }
        guard resolved == root || resolved.hasPrefix(root + "/") else { return .outsideRoot }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return .notFound }
        var path = resolved
        if info.st_mode & S_IFMT == S_IFDIR {
            guard requestEndsWithSlash || relative.isEmpty else { return .directoryWithoutSlash }
            guard let index, let indexPath = realPath(resolved + "/" + index) else { return .notFound }
            guard indexPath.hasPrefix(root + "/") else { return .outsideRoot }
            path = indexPath
        }
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return .notFound }
        let file = OpenFile(descriptor: descriptor)
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return .notFound }
        return .found(Found(file: file, size: Int64(info.st_size), modified: Int64(info.st_mtim.tv_sec), path: path))
    }

    /// Reads up to `count` bytes at `offset` into `buffer`.
    static func read(_ file: OpenFile, offset: Int64, count: Int, into buffer: inout ByteBuffer) throws -> Int {
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { memory in
            var done = 0
            while done < count {
                let read = pread(file.descriptor, memory.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if read < 0, errno == EINTR { continue }
                guard read >= 0 else { throw IOError(errnoCode: errno, reason: "pread") }
                if read == 0 { break }
                done += read
            }
            return done
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
