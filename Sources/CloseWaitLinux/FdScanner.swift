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
        public var sockets: [(fd: Int32, inode: UInt64)] = []
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
            result.sockets.append((Self.fdNumber(entry), inode))
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

    /// The number of open fds of a process (one open and one fstat on Linux 6.2+); throws
    /// when the process is gone or unreadable.
    public func fdCount(pid: Int32) throws(Errno) -> Int {
        let path = proc.root + "/" + String(pid) + "/fd"
        do {
            let dirfd = try retryingEINTR("open", path: path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(dirfd) }
            return try countFds(dirfd, path: path)
        } catch {
            throw classify(error, pid: pid)
        }
    }

    /// How open fds are counted: `size` reads the size of /proc/<pid>/fd (Linux 6.2+ reports
    /// the number of open fds there, one fstat), `readdir` counts its entries without reading
    /// any link (what older kernels need). CLOSEWAITD_FD_COUNT=readdir forces the older path
    /// on any kernel (to measure it, or if a kernel reports a wrong size).
    public enum FdCountMethod: String, Sendable {
        case size, readdir
    }

    /// The method CLOSEWAITD_FD_COUNT asks for, `size` by default.
    public static let defaultFdCountMethod: FdCountMethod = {
        getenv("CLOSEWAITD_FD_COUNT").flatMap { FdCountMethod(rawValue: String(cString: $0)) } ?? .size
    }()

    /// The number of open fds of the process whose /proc/<pid>/fd is open at `dirfd`.
    func countFds(_ dirfd: Int32, path: String) throws(Errno) -> Int {
        if fdCountMethod == .size {
            var info = stat()
            if fstat(dirfd, &info) == 0, info.st_size > 0 { return Int(info.st_size) }
        }
        // Count the entries; a directory stream of its own (readdir moves the file offset).
        let copy = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0 else { throw Errno(errno, call: "openat", path: path) }
        guard let dir = fdopendir(copy) else {
            let code = errno
            close(copy)
            throw Errno(code, call: "fdopendir", path: path)
        }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let first = entry.pointee.d_name.0
            if first >= 0x30 && first <= 0x39 { count += 1 }
        }
        return count
    }

    /// The owner uid of /proc/<pid> (the process's effective uid), one fstatat.
    public func uid(pid: Int32) -> UInt32? {
        var info = stat()
        let path = proc.root + "/" + String(pid)
        return stat(path, &info) == 0 ? info.st_uid : nil
    }
}

/// ParallelScan runs per-process /proc work on several threads: reading fd links is
/// kernel-bound and splits cleanly by process.
enum ParallelScan {
    /// One result slot per chunk, each written by exactly one thread and read after all have
    /// finished: separate memory, no shared Array (whose copy-on-write check would itself be
    /// a data race).
    final class Slots<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T>
        init(count: Int, empty: T) {
            buffer = .allocate(capacity: count)
            buffer.initialize(repeating: empty)
        }
        func store(_ value: T, at index: Int) { (buffer.baseAddress! + index).pointee = value }
        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }
    }

    /// `body` applied to every item, in order, on up to `workers` threads; one thread when
    /// there is less than `minimumPerWorker` work per thread (a thread costs more than that).
    static func map<T: Sendable, R>(_ items: [T], weight: (T) -> Int = { _ in 1 }, minimumPerWorker: Int,
                                    workers: Int = ProcessInfoLite.activeProcessors,
                                    _ body: @Sendable (T) -> R) -> [R] {
        let total = items.reduce(0) { $0 + weight($1) }
        let chunks = max(1, min(workers, items.count, total / max(1, minimumPerWorker)))
        if chunks == 1 { return items.map(body) }
        // Split into chunks of about equal weight.
        var bounds = [0]
        var acc = 0
        for (i, item) in items.enumerated() {
            acc += weight(item)
            if acc >= total * bounds.count / chunks && bounds.count < chunks { bounds.append(i + 1) }
        }
        bounds.append(items.count)
        let edges = bounds
        let slots = Slots<[R]>(count: edges.count - 1, empty: [])
        // Threads.run joins every thread before it returns, so `body` does not escape.
        withoutActuallyEscaping(body) { body in
            Threads.run(count: edges.count - 1) { chunk in
                slots.store(items[edges[chunk]..<edges[chunk + 1]].map(body), at: chunk)
            }
        }
        return Array(slots.buffer.joined())
    }
}

/// Threads runs work on threads of its own, not libdispatch's pool: when thread creation
/// fails (a unit's TasksMax, a cgroup's pids.max), libdispatch retries forever and the tick
/// never ends; here the work then simply runs on the calling thread.
enum Threads {
    final class Job: @unchecked Sendable {
        let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }

    /// Calls `body(i)` for every i in 0..<count, on up to `count` threads (this one included),
    /// and returns when all are done.
    static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var started = [pthread_t]()
        var inline = [0]
        for i in 1..<max(1, count) {
            let job = Unmanaged.passRetained(Job { body(i) })
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { context in
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                job.work()
                return nil
            }, job.toOpaque())
            if rc == 0 {
                started.append(thread)
            } else {
                job.release()
                inline.append(i)
            }
        }
        for i in inline where i < count { body(i) }
        for thread in started { pthread_join(thread, nil) }
    }
}

/// How many threads the /proc walk may use.
enum ProcessInfoLite {
    /// The unit's TasksMax=16 must hold these workers, the main thread, and Dispatch's own
    /// manager and timer threads with room to spare: a 64-CPU host must not fail thread
    /// creation inside libdispatch.
    static let workerCap = 6

    /// min(CPUs in this process's affinity mask, `workerCap`), at least 1.
    static let activeProcessors: Int = {
        let count = cw_affinity_cpu_count()
        let allowed = count > 0 ? Int(count) : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, min(workerCap, allowed))
    }()
}
