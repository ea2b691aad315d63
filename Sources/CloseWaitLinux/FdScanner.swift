import CloseWaitCore
import Glibc

/// FdScanner maps socket inodes to the processes holding them by reading the links in
/// /proc/<pid>/fd with `openat`/`readlinkat` (no path strings per fd, no FileManager).
public struct FdScanner {
    public var proc: ProcFS

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
    }

    /// What one process's fd table held.
    public struct ProcessFds {
        public var fdCount = 0
        /// (fd number, socket inode) for the wanted inodes only.
        public var sockets: [(fd: Int32, inode: UInt64)] = []
    }

    /// Reads /proc/<pid>/fd and returns the wanted socket links it holds.
    /// `wanted` nil means every socket link.
    public func scan(pid: Int32, wanted: Set<UInt64>?) throws(Errno) -> ProcessFds {
        let path = proc.root + "/" + String(pid) + "/fd"
        let fd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let dir = fdopendir(fd) else {
            let code = errno
            close(fd)
            throw Errno(code, call: "fdopendir", path: path)
        }
        defer { closedir(dir) }
        var result = ProcessFds()
        var link = [UInt8](repeating: 0, count: 64)
        errno = 0
        while let entry = readdir(dir) {
            // Skip "." and "..": fd names are digits.
            let first = entry.pointee.d_name.0
            guard first >= 0x30 && first <= 0x39 else { continue }
            result.fdCount += 1
            let n = withUnsafePointer(to: &entry.pointee.d_name) { namePointer in
                namePointer.withMemoryRebound(to: CChar.self, capacity: 256) { name in
                    link.withUnsafeMutableBufferPointer { buffer in
                        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                            readlinkat(fd, name, $0, buffer.count)
                        }
                    }
                }
            }
            guard n > 0 else {
                // Without CAP_SYS_PTRACE the directory lists but no link reads: report the
                // process as unreadable rather than as holding nothing.
                if errno == EACCES || errno == EPERM { throw Errno(errno, call: "readlinkat", path: path) }
                // Otherwise the fd was closed under us: skip it, as ss does.
                continue
            }
            let inode = link.withUnsafeBytes { FdLink.socketInode(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            guard let inode, wanted?.contains(inode) ?? true else { continue }
            let number = withUnsafeBytes(of: entry.pointee.d_name) { raw -> Int32 in
                var value: Int32 = 0
                for byte in raw { if byte == 0 { break }; value = value &* 10 &+ Int32(byte &- 0x30) }
                return value
            }
            result.sockets.append((number, inode))
        }
        return result
    }
}
