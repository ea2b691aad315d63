import CloseWaitCore
import Glibc

/// ProcFS reads files under a /proc root (`/proc` by default; tests point it at a fixture tree).
public struct ProcFS: Sendable {
    public var root: String

    public init(root: String = "/proc") {
        self.root = root
    }

    /// The whole content of `root/relative`.
    public func read(_ relative: String) throws(Errno) -> [UInt8] {
        let path = root + "/" + relative
        return try withOpenFile(path, flags: O_RDONLY) { fd throws(Errno) in try readAll(fd, path: path) }
    }

    public func readText(_ relative: String) throws(Errno) -> String {
        String(decoding: try read(relative), as: UTF8.self)
    }

    /// The target of the symbolic link `root/relative`.
    public func readLink(_ relative: String) throws(Errno) -> String {
        let path = root + "/" + relative
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = try retryingEINTR("readlink", path: path) {
            buffer.withUnsafeMutableBufferPointer { raw in
                raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) { readlink(path, $0, raw.count) }
            }
        }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// The thread-group leaders: the numeric entries of the /proc root (threads are not listed
    /// there, and they share their leader's fd table).
    public func pids() throws(Errno) -> [Int32] {
        guard let dir = opendir(root) else { throw Errno(errno, call: "opendir", path: root) }
        defer { closedir(dir) }
        var pids = [Int32]()
        while let entry = readdir(dir) {
            let pid: Int32? = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                var value: Int32 = 0
                var digits = 0
                for byte in raw {
                    if byte == 0 { break }
                    guard byte >= 0x30 && byte <= 0x39 else { return nil }
                    value = value &* 10 &+ Int32(byte - 0x30)
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            if let pid { pids.append(pid) }
        }
        return pids
    }
}

/// Reads a whole regular file (the config), any size.
public func readFile(_ path: String) throws(Errno) -> [UInt8] {
    try withOpenFile(path, flags: O_RDONLY) { fd throws(Errno) in try readAll(fd, path: path) }
}

/// CLOCK_MONOTONIC in seconds: the daemon's clock for ages and rates.
public func monotonicNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, renamed over it,
/// so a reader sees the old content or the new, never a part. Creates the directory if missing.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(Errno) {
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
        let dir = String(path[..<slash])
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw Errno(errno, call: "mkdir", path: dir) }
    }
    let temporary = path + ".tmp"
    let fd = try retryingEINTR("open", path: temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if n < 0 {
            if errno == EINTR { continue }
            let code = errno
            close(fd)
            unlink(temporary)
            throw Errno(code, call: "write", path: temporary)
        }
        written += n
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
        let code = errno
        unlink(temporary)
        throw Errno(code, call: "rename", path: path)
    }
}
