import CloseWaitCore
import Glibc

/// SnapshotCollector takes one full sample: the kernel's sockets, a walk of every process's fd
/// table for their inodes, and the details of each owner.
public struct SnapshotCollector {
    public var sampler: KernelSampler
    /// Finds owners; with `fullScanInterval` 0 (the default) every collect walks every fd.
    public let owners: OwnerIndex

    /// The /proc reader the owner index uses (settings such as the fd-count method and
    /// whether cmdline is read live here).
    public var fdTables: ProcFdTableSource {
        get { owners.source as! ProcFdTableSource }
        nonmutating set { owners.source = newValue }
    }

    public init(source: SourceChoice = .auto, procRoot: String = "/proc", fullScanInterval: Double = 0) {
        let proc = ProcFS(root: procRoot)
        sampler = KernelSampler(choice: source, proc: proc)
        owners = OwnerIndex(source: ProcFdTableSource(proc: proc), fullScanInterval: fullScanInterval)
    }

    public struct Result: Sendable {
        public var snapshot: Snapshot
        public var fallbackReason: String?
        /// What was and was not read of the other network namespaces.
        public var coverage = NamespaceCoverage()
    }

    /// One sample: the kernel's sockets in `states`, joined with their owners.
    /// - Parameter now: monotonic seconds, for the owner index's full-walk schedule.
    /// - Parameter keepSockets: false for the per-process view only (the daemon).
    /// Processes tracked at most (`daemon.max_processes`).
    public var maxProcesses = Snapshot.defaultMaxProcesses

    public mutating func collect(states: Set<TCPState>, now: Double = monotonicNow(), keepSockets: Bool = true) throws -> Result {
        let sample = try sampler.sample(states: states, now: now)
        let found = try owners.attribute(records: sample.records, now: now)
        sampler.pruneOrphans { !found.owners[$0].isEmpty }
        let snapshot = Snapshot.join(records: sample.records, owners: found.owners, details: found.details,
                                     statistics: found.statistics, source: sample.source, states: states,
                                     keepSockets: keepSockets, foreign: sample.foreign, maxProcesses: maxProcesses)
        return Result(snapshot: snapshot, fallbackReason: sample.fallbackReason, coverage: sample.coverage)
    }
}


