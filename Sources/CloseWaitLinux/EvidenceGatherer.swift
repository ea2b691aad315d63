import CloseWaitCore
import Glibc

/// EvidenceGatherer looks closer at one process, on demand (an alert, `closewaitd explain`):
/// its CLOSE_WAIT and ESTABLISHED sockets to its top peers, with receive and send queues.
/// ESTABLISHED sockets are never dumped on every tick: in the daemon's own network namespace
/// the kernel filters them by peer (inet_diag bytecode); in another namespace the member's
/// /proc/<pid>/net/tcp{,6} is read and filtered here. Ownership comes from the process's own
/// fd table (one scan of /proc/<pid>/fd, looking for those inodes only).
public struct EvidenceGatherer {
    public var proc: ProcFS
    /// At most this many peers are looked at (the bytecode holds at most 8).
    public static let maxPeers = 5

    /// Tables of other namespaces read during one tick, shared by every look of that tick:
    /// twenty processes of one namespace crossing a threshold together cost one read of its
    /// table, not twenty.
    public final class TableCache {
        var tables: [UInt64: [SocketRecord]] = [:]
        public init() {}
    }
    public var cache: TableCache?
    /// Made once per gatherer (the daemon keeps one), not per look.
    let namespaces: NetNamespaces
    let sampler: KernelSampler

    public init(proc: ProcFS = ProcFS(), cache: TableCache? = nil) {
        self.proc = proc
        self.cache = cache
        namespaces = NetNamespaces(proc: proc)
        sampler = KernelSampler(choice: .netlink, proc: proc)
    }

    public struct Sockets: Sendable {
        public var closeWait: [SocketRecord]
        public var established: [SocketRecord]
    }

    /// The process's CLOSE_WAIT and ESTABLISHED sockets whose remote end is one of `peers`.
    /// - Parameter deadline: monotonic seconds by which a foreign namespace's table read stops.
    public func sockets(pid: Int32, peers: [Endpoint], deadline: Double? = nil) throws -> Sockets {
        let peers = Array(peers.prefix(Self.maxPeers))
        guard !peers.isEmpty else { return Sockets(closeWait: [], established: []) }
        let states: Set<TCPState> = [.closeWait, .established]
        var sampler = sampler
        let records: [SocketRecord]
        if let mine = namespaces.namespace(of: pid), let own = namespaces.own, mine != own {
            let wanted = Set(peers)
            // Streamed and bounded: another user may have filled this namespace's table.
            let table: [SocketRecord]
            if let cached = cache?.tables[mine] {
                table = cached
            } else {
                table = try sampler.sampleProcBounded(
                    states, proc: ProcFS(root: proc.root + "/" + String(pid)),
                    limit: sampler.foreignByteLimit, deadline: deadline
                ).records
                cache?.tables[mine] = table
            }
            records = table.filter { wanted.contains($0.remote) }
        } else {
            records = try sampler.samplePerFamily(states, peers: peers)
        }
        let inodes = Set(records.map(\.inode)).subtracting([0])
        let held = Set(try FdScanner(proc: proc).scan(pid: pid, wanted: inodes).sockets.map(\.inode))
        let owned = records.filter { held.contains($0.inode) }
        return Sockets(
            closeWait: owned.filter { $0.state == .closeWait }, established: owned.filter { $0.state == .established })
    }

    /// The evidence for one tracked process: its top peers looked up now, ages and growth
    /// from the tracker.
    public func evidence(for status: ProcessStatus, ages: [Double], deadline: Double? = nil) throws -> Evidence {
        let peers = status.peers.prefix(Self.maxPeers).map(\.endpoint)
        let sockets = try self.sockets(pid: status.details.pid, peers: peers, deadline: deadline)
        var evidence = Evidence(
            closeWait: status.count,
            peers: peers.map { PeerEvidence(peer: $0, closeWait: sockets.closeWait, established: sockets.established) },
            ages: Evidence.summarize(ages: ages), growthPerMinute: status.growthPerMinute, pattern: status.pattern,
            ageHistogram: Evidence.histogram(ages: ages))
        evidence.refresh(from: status)
        evidence.clues = RuntimeCluesReader(proc: proc).clues(pid: status.details.pid)
        return evidence
    }
}
