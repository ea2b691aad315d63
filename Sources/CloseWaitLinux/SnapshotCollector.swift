import CloseWaitCore
import Glibc

/// SnapshotCollector takes one full sample: the kernel's sockets, a walk of every process's fd
/// table for their inodes, and the details of each owner.
public struct SnapshotCollector {
    public var sampler: KernelSampler
    public var scanner: FdScanner
    public var reader: ProcessReader

    public init(source: SourceChoice = .auto, procRoot: String = "/proc") {
        let proc = ProcFS(root: procRoot)
        sampler = KernelSampler(choice: source, proc: proc)
        scanner = FdScanner(proc: proc)
        reader = ProcessReader(proc: proc)
    }

    public struct Result: Sendable {
        public var snapshot: Snapshot
        public var fallbackReason: String?
    }

    public mutating func collect(states: Set<TCPState>) throws -> Result {
        let sample = try sampler.sample(states: states)
        var wanted = Set<UInt64>()
        for record in sample.records where record.inode != 0 { wanted.insert(record.inode) }
        var owners = [UInt64: [Int32]]()
        var fdCounts = [Int32: Int]()
        var stats = ScanStatistics()
        if !wanted.isEmpty {
            for pid in try scanner.proc.pids() {
                stats.processesScanned += 1
                do {
                    let fds = try scanner.scan(pid: pid, wanted: wanted)
                    stats.fdsRead += fds.fdCount
                    guard !fds.sockets.isEmpty else { continue }
                    fdCounts[pid] = fds.fdCount
                    var seen = Set<UInt64>()
                    for (_, inode) in fds.sockets where seen.insert(inode).inserted {
                        owners[inode, default: []].append(pid)
                    }
                } catch {
                    stats.count(error)
                }
            }
        }
        var details = [Int32: ProcessDetails]()
        for (pid, count) in fdCounts {
            do {
                details[pid] = try reader.details(pid: pid, fdOpen: count)
            } catch {
                stats.count(error)
            }
        }
        let snapshot = Snapshot.join(records: sample.records, owners: owners, details: details,
                                     statistics: stats, source: sample.source, states: states)
        return Result(snapshot: snapshot, fallbackReason: sample.fallbackReason)
    }
}

extension ScanStatistics {
    /// Counts a per-process failure by kind instead of throwing it.
    mutating func count(_ error: any Error) {
        if let error = error as? Errno {
            if error.isVanished { vanished += 1; return }
            if error.isPermission { permissionDenied += 1; return }
        }
        otherErrors += 1
    }
}
