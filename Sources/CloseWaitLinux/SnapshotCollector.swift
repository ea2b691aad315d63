import CloseWaitCore
import Glibc

/// SnapshotCollector takes one full sample: the kernel's sockets, a walk of every process's fd
/// table for their inodes, and the details of each owner.
public struct SnapshotCollector {
    public var sampler: KernelSampler
    /// Finds owners; with `fullScanInterval` 0 (the default) every collect walks every fd.
    public let owners: OwnerIndex

    /// The /proc reader the owner index uses (settings such as the fd-count method and
    /// whether cmdline is read live here); a change is handed to the index.
    public var fdTables: ProcFdTableSource {
        didSet { owners.source = fdTables }
    }

    public init(source: SourceChoice = .auto, procRoot: String = "/proc", fullScanInterval: Double = 0) {
        let proc = ProcFS(root: procRoot)
        sampler = KernelSampler(choice: source, proc: proc)
        fdTables = ProcFdTableSource(proc: proc)
        owners = OwnerIndex(source: fdTables, fullScanInterval: fullScanInterval)
    }

    public struct Result: Sendable {
        public var snapshot: Snapshot
        public var fallbackReason: String?
        /// What was and was not read of the other network namespaces.
        public var coverage = NamespaceCoverage()
        /// Seconds each phase took: the kernel's tables, the owner search, the join.
        public var phases = (sample: 0.0, attribute: 0.0, join: 0.0)
        /// The sampled sockets and their owners, with `keepAttribution` (the benchmark checks
        /// them against its workload's manifest).
        public var attribution: (records: [SocketRecord], owners: OwnerMap)?
    }

    /// Processes tracked at most (`daemon.max_processes`).
    public var maxProcesses = Snapshot.defaultMaxProcesses

    /// One sample: the kernel's sockets in `states`, joined with their owners.
    /// - Parameter now: monotonic seconds, for the owner index's full-walk schedule.
    /// - Parameter keepSockets: false for the per-process view only (the daemon).

    public mutating func collect(
        states: Set<TCPState>, now: Double = monotonicNow(), keepSockets: Bool = true,
        keepAttribution: Bool = false
    ) throws -> Result {
        let started = monotonicNow()
        let sample = try sampler.sample(states: states, now: now)
        let sampled = monotonicNow()
        let found = try owners.attribute(records: sample.records, now: now)
        sampler.pruneOrphans { !found.owners[$0].isEmpty }
        let attributed = monotonicNow()
        let snapshot = Snapshot.join(
            records: sample.records, owners: found.owners, details: found.details,
            statistics: found.statistics, source: sample.source, states: states,
            keepSockets: keepSockets, foreign: sample.foreign, maxProcesses: maxProcesses)
        var result = Result(snapshot: snapshot, fallbackReason: sample.fallbackReason, coverage: sample.coverage)
        result.phases = (sampled - started, attributed - sampled, monotonicNow() - attributed)
        if keepAttribution { result.attribution = (sample.records, found.owners) }
        return result
    }
}
