import CloseWaitCore
import Glibc

/// ProcFdTableSource is the owner index's view of real processes: /proc/<pid>/fd read with
/// `openat`/`readlinkat` (FdScanner), details from ProcessReader. Batches run on several
/// threads (ParallelScan); errors are mapped to FdTableError.
public struct ProcFdTableSource: FdTableSource, Sendable {
    public var scanner: FdScanner
    public var reader: ProcessReader

    public init(proc: ProcFS = ProcFS()) {
        scanner = FdScanner(proc: proc)
        reader = ProcessReader(proc: proc)
    }

    public func listProcesses() throws -> [Int32] {
        try scanner.proc.pids()
    }

    public func scan(_ requests: [FdScanRequest]) -> [Result<FdTable, FdTableError>] {
        let scanner = scanner
        // A full walk: one thread per 64 processes at least; a search batch: per 4.
        return ParallelScan.map(requests, minimumPerWorker: requests.count > 64 ? 64 : 4) { request in
            Result { () throws(Errno) in
                let fds = try scanner.scan(pid: request.pid, wanted: request.wanted, skip: request.skip)
                return FdTable(fdCount: fds.fdCount, links: fds.sockets)
            }.mapError(Self.tableError)
        }
    }

    /// One open (and on Linux 6.2+ one fstat) per process: the fd directory's size is its
    /// count; before 6.2 (or with CLOSEWAITD_FD_COUNT=readdir) the count is left to the index,
    /// because a readdir of /proc/<pid>/fd makes the kernel build an entry per fd.
    public func fdCounts(_ pids: [Int32]) -> [Result<Int?, FdTableError>] {
        let scanner = scanner
        return ParallelScan.map(pids, minimumPerWorker: 256) { pid in
            Result { () throws(Errno) in try scanner.fdCountIfCheap(pid: pid) }.mapError(Self.tableError)
        }
    }

    /// A zombie is gone: it holds no fd any more (Linux 6.2+ would show an fd count of 0,
    /// which reads as "not cheap" on older kernels).
    public func startTime(of pid: Int32) -> Result<UInt64, FdTableError> {
        Self.liveStartTime(reader, pid)
    }

    static func liveStartTime(_ reader: ProcessReader, _ pid: Int32) -> Result<UInt64, FdTableError> {
        switch Result(catching: { try reader.stat(pid: pid) }) {
        case let .success(stat): stat.exited ? .failure(.vanished) : .success(stat.startTime)
        case let .failure(error): .failure(tableError(error))
        }
    }

    public func startTimes(_ pids: [Int32]) -> [Result<UInt64, FdTableError>] {
        let reader = reader
        return ParallelScan.map(pids, minimumPerWorker: 256) { pid in Self.liveStartTime(reader, pid) }
    }

    public func details(of pid: Int32, fdOpen: Int) -> Result<ProcessDetails, FdTableError> {
        Result { try reader.details(pid: pid, fdOpen: fdOpen) }.mapError(Self.tableError)
    }

    public func uid(of pid: Int32) -> UInt32? {
        scanner.uid(pid: pid)
    }

    static func tableError(_ error: any Error) -> FdTableError {
        if let error = error as? Errno {
            if error.isVanished { return .vanished }
            if error.isPermission { return .permissionDenied }
        }
        return .other("\(error)")
    }
}
