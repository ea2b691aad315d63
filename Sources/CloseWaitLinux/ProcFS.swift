import CloseWaitCore
import Glibc

/// ProcFS reads files under a /proc root (`/proc` by default; tests point it at a fixture tree).
public struct ProcFS: Sendable {
    public var root: String

    public init(root: String = "/proc") {
        self.root = root
    }

    /// The whole content of `root/relative`, or its first `limit` bytes.
    public func read(_ relative: String, limit: Int = .max) throws(Errno) -> [UInt8] {
        let path = root + "/" + relative
        return try withOpenFile(path, flags: O_RDONLY) { fd throws(Errno) in try readAll(fd, path: path, limit: limit) }
    }

    /// How a chunked read ended.
    public enum ChunkedEnd: Sendable, Equatable {
        case complete
        /// Stopped after `limit` bytes: the rest of the file was not read.
        case byteLimit
        /// Stopped at the deadline (monotonic seconds).
        case deadline
    }

    /// Reads `root/relative` in chunks of `chunkSize`, handing each to `body`, so a large file
    /// is never held whole; stops after `limit` bytes or once `deadline` (monotonic) passes.
    public func readChunks(
        _ relative: String, chunkSize: Int = 64 << 10, limit: Int = .max, deadline: Double? = nil,
        _ body: (ArraySlice<UInt8>) throws -> Void
    ) throws -> (bytes: Int, end: ChunkedEnd) {
        let path = root + "/" + relative
        let fd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var total = 0
        while true {
            if total >= limit {
                // At the limit: the end of the file, or more that is not read.
                var probe: UInt8 = 0
                let more = try retryingEINTR("read", path: path) { Glibc.read(fd, &probe, 1) }
                return (total, more == 0 ? .complete : .byteLimit)
            }
            if let deadline, monotonicNow() >= deadline { return (total, .deadline) }
            let want = min(chunkSize, limit - total)
            let n = try retryingEINTR("read", path: path) {
                buffer.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress!, want) }
            }
            if n == 0 { return (total, .complete) }
            total += n
            try body(buffer[0..<n])
        }
    }

    public func readText(_ relative: String) throws(Errno) -> String {
        String(decoding: try read(relative), as: UTF8.self)
    }

    /// The target of the symbolic link `root/relative`, as the bytes the kernel gave.
    public func readLink(_ relative: String) throws(Errno) -> [UInt8] {
        let path = root + "/" + relative
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = try retryingEINTR("readlink", path: path) {
            buffer.withUnsafeMutableBufferPointer { raw in
                raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) {
                    readlink(path, $0, raw.count)
                }
            }
        }
        return Array(buffer[0..<n])
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

/// FileReadError says why a file an admin named (the config, the state file) was not read.
public enum FileReadError: Error, Equatable, CustomStringConvertible {
    case system(Errno)
    case notRegular(path: String, kind: String)
    case tooLarge(path: String, limit: Int)

    public var description: String {
        switch self {
        case let .system(error): error.description
        case let .notRegular(path, kind): "\(path) is \(kind), not a regular file"
        case let .tooLarge(path, limit): "\(path) is larger than \(limit / 1024) KiB; refusing to read it"
        }
    }

    public var errno: Errno? { if case let .system(e) = self { e } else { nil } }
}

/// Reads a regular file an admin named (config, state), safely: opened non-blocking so a FIFO
/// cannot hang us, refused unless it is a regular file (not /dev/zero, a FIFO or a socket),
/// and read to at most `limit` bytes.
public func readRegularFile(_ path: String, limit: Int) throws(FileReadError) -> [UInt8] {
    let fd: Int32
    do {
        fd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) }
    } catch { throw .system(error) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .system(Errno(errno, call: "fstat", path: path)) }
    let type = info.st_mode & S_IFMT
    guard type == S_IFREG else {
        let kind =
            switch type {
            case S_IFIFO: "a FIFO"
            case S_IFCHR: "a character device"
            case S_IFBLK: "a block device"
            case S_IFSOCK: "a socket"
            case S_IFDIR: "a directory"
            default: "not a file"
            }
        throw .notRegular(path: path, kind: kind)
    }
    guard info.st_size <= limit else { throw .tooLarge(path: path, limit: limit) }
    var buffer = [UInt8](repeating: 0, count: min(limit, max(4096, Int(info.st_size))) + 1)
    var used = 0
    while used < buffer.count {
        let n: Int
        do {
            n = try retryingEINTR("read", path: path) {
                buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + used, raw.count - used) }
            }
        } catch { throw .system(error) }
        if n == 0 { break }
        used += n
        if used == buffer.count && buffer.count <= limit {
            buffer.append(contentsOf: repeatElement(0, count: min(buffer.count, limit + 1 - buffer.count)))
        }
    }
    guard used <= limit else { throw .tooLarge(path: path, limit: limit) }
    buffer.removeSubrange(used...)
    return buffer
}

/// Writes `bytes` to `path` atomically: a new temporary file beside it, renamed over it, so a
/// reader sees the old content or the new, never a part. The temporary file gets a random
/// name and is created with O_EXCL|O_NOFOLLOW: a file or symlink someone planted in the
/// directory is never opened, truncated or written through. Creates the directory if missing.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(Errno) {
    let slash = path.lastIndex(of: "/")
    if let slash, slash != path.startIndex {
        let dir = String(path[..<slash])
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw Errno(errno, call: "mkdir", path: dir) }
    }
    let directory = slash.map { String(path[...$0]) } ?? ""
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    var temporary = ""
    var fd: Int32 = -1
    for _ in 0..<16 {
        temporary = directory + "." + base + "." + String(UInt64.random(in: 0...UInt64.max), radix: 36) + ".tmp"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd >= 0 { break }
        if errno != EEXIST && errno != EINTR { throw Errno(errno, call: "open", path: temporary) }
    }
    guard fd >= 0 else { throw Errno(EEXIST, call: "open", path: temporary) }
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
