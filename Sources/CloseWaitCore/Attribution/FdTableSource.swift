/// FdTableSource is the owner index's window on processes: the Linux layer reads /proc
/// (`ProcFdTableSource`), tests pass a table of values. Batch calls may run in parallel; the
/// results come back in the order asked.
public protocol FdTableSource {
    /// The thread-group leaders now. Throws when they cannot be listed at all.
    func listProcesses() throws -> [Int32]
    /// For each request, the wanted socket links of the process's fd table (fds in `skip` not
    /// read) and its open-fd count.
    func scan(_ requests: [FdScanRequest]) -> [Result<FdTable, FdTableError>]
    /// Each process's open-fd count, or nil when it is there but counting would cost a walk
    /// of its fd table (kernels before 6.2); fails when the process is gone or unreadable.
    func fdCounts(_ pids: [Int32]) -> [Result<Int?, FdTableError>]
    /// The start time (clock ticks since boot, /proc/<pid>/stat field 22).
    func startTime(of pid: Int32) -> Result<UInt64, FdTableError>
    /// The start times of many processes (may run in parallel), in the order asked.
    func startTimes(_ pids: [Int32]) -> [Result<UInt64, FdTableError>]
    /// What a person needs to recognise the process.
    func details(of pid: Int32, fdOpen: Int) -> Result<ProcessDetails, FdTableError>
    /// The effective uid, if known.
    func uid(of pid: Int32) -> UInt32?
}

/// FdScanRequest asks for one process's links to `wanted` inodes; nil: every socket link.
public struct FdScanRequest: Sendable {
    public var pid: Int32
    public var wanted: Set<UInt64>?
    public var skip: Set<Int32>

    public init(pid: Int32, wanted: Set<UInt64>?, skip: Set<Int32> = []) {
        self.pid = pid
        self.wanted = wanted
        self.skip = skip
    }
}

/// FdTable is what one process's fd table held: its open-fd count and the wanted links.
public struct FdTable: Sendable, Equatable {
    public var fdCount: Int
    public var links: [FdLinkEntry]

    public init(fdCount: Int, links: [FdLinkEntry]) {
        self.fdCount = fdCount
        self.links = links
    }
}

/// FdLinkEntry is one `/proc/<pid>/fd/<fd> -> socket:[inode]` link.
public struct FdLinkEntry: Sendable, Hashable {
    public var fd: Int32
    public var inode: UInt64

    public init(fd: Int32, inode: UInt64) {
        self.fd = fd
        self.inode = inode
    }
}

/// FdTableError is why a process could not be read; counted, never thrown.
public enum FdTableError: Error, Equatable, Sendable {
    /// It exited (or is exiting) while we read it.
    case vanished
    /// Its fd table may not be read (EACCES/EPERM).
    case permissionDenied
    /// Anything else, described.
    case other(String)
}

extension FdTableSource {
    public func startTimes(_ pids: [Int32]) -> [Result<UInt64, FdTableError>] { pids.map(startTime(of:)) }
}

extension ScanStatistics {
    /// Counts a per-process failure by kind.
    public mutating func count(_ error: FdTableError) {
        switch error {
        case .vanished: vanished += 1
        case .permissionDenied: permissionDenied += 1
        case .other: otherErrors += 1
        }
    }
}
