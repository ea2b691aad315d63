import CLinuxShim
import CloseWaitCore
import Glibc

/// FdScanner maps socket inodes to the processes holding them by reading the links in
/// /proc/<pid>/fd with `openat`/`readlinkat` (no path strings per fd, no FileManager).
public struct FdScanner: Sendable {
    public var proc: ProcFS
    /// How `verify` counts a process's open fds (see FdCountMethod).
    public var fdCountMethod = FdScanner.defaultFdCountMethod

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
    }

    /// What one process's fd table held.
    public struct ProcessFds {
        public var fdCount = 0
        /// (fd number, socket inode) for the wanted inodes only.
        public var sockets: [FdLinkEntry] = []
    }

    /// Reads /proc/<pid>/fd and returns the wanted socket links it holds.
    /// `wanted` nil means every socket link; fd numbers in `skip` are counted but not read.
    public func scan(pid: Int32, wanted: Set<UInt64>?, skip: Set<Int32>? = nil) throws(Errno) -> ProcessFds {
        do {
            return try scanOnce(pid: pid, wanted: wanted, skip: skip)
        } catch {
            throw classify(error, pid: pid)
        }
    }

    /// A process that is exiting (or a zombie) has no memory map, so the kernel's ptrace
    /// check refuses its fd table with EACCES even to root: that is "vanished", not
    /// "permission denied".
    func classify(_ error: Errno, pid: Int32) -> Errno {
        guard error.isPermission, processIsGone(pid) else { return error }
        return Errno(ESRCH, call: error.call, path: error.path)
    }

    /// Whether /proc/<pid> is gone, or its state is zombie (Z) or dead (X).
    func processIsGone(_ pid: Int32) -> Bool {
        guard let bytes = try? proc.read(String(pid) + "/stat", limit: 512) else { return true }
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return false }
        let state = bytes[close + 2]
        return state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") || state == UInt8(ascii: "x")
    }

    private func scanOnce(pid: Int32, wanted: Set<UInt64>?, skip: Set<Int32>?) throws(Errno) -> ProcessFds {
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
            if let skip, !skip.isEmpty, skip.contains(Self.fdNumber(entry)) { continue }
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
            result.sockets.append(FdLinkEntry(fd: Self.fdNumber(entry), inode: inode))
        }
        return result
    }

    static func fdNumber(_ entry: UnsafeMutablePointer<dirent>) -> Int32 {
        withUnsafeBytes(of: entry.pointee.d_name) { raw -> Int32 in
            var value: Int32 = 0
            for byte in raw { if byte == 0 { break }; value = value &* 10 &+ Int32(byte &- 0x30) }
            return value
        }
    }

    /// The open-fd count when the kernel reports it as the fd directory's size (Linux 6.2+,
    /// and the `size` method), else nil; throws when the process is gone or unreadable.
    public func fdCountIfCheap(pid: Int32) throws(Errno) -> Int? {
        let path = proc.root + "/" + String(pid) + "/fd"
        do {
            let dirfd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(dirfd) }
            guard fdCountMethod == .size else { return nil }
            var info = stat()
            return fstat(dirfd, &info) == 0 && info.st_size > 0 ? Int(info.st_size) : nil
        } catch {
            throw classify(error, pid: pid)
        }
    }

    /// How open fds are counted between full walks: `size` reads the size of /proc/<pid>/fd
    /// (Linux 6.2+ reports the number of open fds there, one fstat); `readdir` is what older
    /// kernels leave: a count costs a readdir of the fd table (the kernel builds an entry per
    /// fd), so the count comes from the scans (full walks, searches) and moves with the
    /// sampled sockets in between. CLOSEWAITD_FD_COUNT=readdir forces the older path on any
    /// kernel (to measure it, or if a kernel reports a wrong size).
    public enum FdCountMethod: String, Sendable {
        case size, readdir
    }

    /// The method CLOSEWAITD_FD_COUNT asks for, `size` by default.
    public static let defaultFdCountMethod: FdCountMethod = {
        getenv("CLOSEWAITD_FD_COUNT").flatMap { FdCountMethod(rawValue: String(cString: $0)) } ?? .size
    }()

    /// The owner uid of /proc/<pid> (the process's effective uid), one fstatat.
    public func uid(pid: Int32) -> UInt32? {
        var info = stat()
        let path = proc.root + "/" + String(pid)
        return stat(path, &info) == 0 ? info.st_uid : nil
    }
}
