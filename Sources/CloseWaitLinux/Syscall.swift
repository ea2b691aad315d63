import Glibc

/// Errno is a failed system call's error number, with the call and the path it was about.
public struct Errno: Error, Equatable, CustomStringConvertible {
    public var code: Int32
    public var call: String
    public var path: String?

    public init(_ code: Int32, call: String, path: String? = nil) {
        self.code = code
        self.call = call
        self.path = path
    }

    /// The process is gone (it exited between listing and reading).
    public var isVanished: Bool { code == ENOENT || code == ESRCH }
    /// We may not look (another user's process, without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE).
    public var isPermission: Bool { code == EACCES || code == EPERM }

    public var description: String {
        let message = String(cString: strerror(code))
        if let path { return "\(call) \(path): \(message)" }
        return "\(call): \(message)"
    }
}

/// Runs a system call, retrying while it fails with EINTR; a negative result becomes `Errno`.
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ call: String, path: String? = nil, _ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code != EINTR { throw Errno(code, call: call, path: path) }
    }
}

/// Opens a file with O_CLOEXEC, runs `body` with the descriptor, and closes it on every path.
func withOpenFile<R>(_ path: String, flags: Int32, _ body: (Int32) throws(Errno) -> R) throws(Errno) -> R {
    let fd = try retryingEINTR("open", path: path) { open(path, flags | O_CLOEXEC) }
    defer { close(fd) }
    return try body(fd)
}

/// Same as `withOpenFile`, relative to a directory descriptor.
func withOpenFile<R>(at dirfd: Int32, _ name: String, flags: Int32, _ body: (Int32) throws(Errno) -> R) throws(Errno)
    -> R
{
    let fd = try retryingEINTR("openat", path: name) { openat(dirfd, name, flags | O_CLOEXEC) }
    defer { close(fd) }
    return try body(fd)
}

/// Reads a file to its end in as many read(2) calls as it takes. /proc files report a size of
/// 0 or 4096 in stat, so the size is never trusted.
/// With `limit`, stops after that many bytes.
func readAll(_ fd: Int32, path: String, initialCapacity: Int = 4096, limit: Int = .max) throws(Errno) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: min(initialCapacity, limit))
    var used = 0
    while used < limit {
        if used == buffer.count {
            buffer.append(contentsOf: repeatElement(0, count: min(buffer.count, limit - buffer.count)))
        }
        let n = try retryingEINTR("read", path: path) {
            buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + used, raw.count - used) }
        }
        if n == 0 { break }
        used += n
    }
    buffer.removeSubrange(used...)
    return buffer
}
