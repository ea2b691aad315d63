/// UnownedReason says why a socket has no owning process in a snapshot.
public enum UnownedReason: String, Sendable, Hashable {
    /// Inode 0: the kernel made the connection but no process accepted it yet (it waits in a
    /// listener's accept queue); the listener's owner will get it on accept().
    case listenBacklog = "listen-backlog"
    /// Some processes' fd tables could not be read (permission), the owner may be among them.
    case ownerUnreadable = "owner-unreadable"
    /// No fd link names the inode: the owner closed it or exited after the sample, or lives
    /// in another pid namespace whose /proc we do not see.
    case noOwnerFound = "no-owner-found"
}

/// SnapshotSocket is a sampled socket joined with the pids that hold an fd to it.
public struct SnapshotSocket: Hashable, Sendable {
    public var record: SocketRecord
    public var owners: [Int32]
    public var unownedReason: UnownedReason?
    /// The network namespace it lives in, when not the sampler's own (its addresses are
    /// only meaningful there).
    public var netns: UInt64?
}

/// PeerCount is how many of a process's sockets lead to one remote endpoint.
public struct PeerCount: Hashable, Sendable {
    public var endpoint: Endpoint
    public var count: Int
    /// The network namespace the sockets live in, when not the sampler's own: the peer
    /// address means something only there (`127.0.0.1` in a container is the container).
    public var netns: UInt64?

    public init(endpoint: Endpoint, count: Int, netns: UInt64? = nil) {
        self.endpoint = endpoint
        self.count = count
        self.netns = netns
    }

    /// `127.0.0.1:8080`, or `127.0.0.1:8080 in netns 4026532567` for another namespace's peer.
    /// `shown`: the namespace the same line already names (the process's own): not repeated,
    /// and a peer in the host's namespace then says so.
    public func place(shown: UInt64? = nil) -> String {
        endpoint.description + qualifier(shown: shown, " in netns \(netns ?? 0)", " in the host netns")
    }
    /// `127.0.0.1:8080×41`, or `127.0.0.1:8080×41 (netns 4026532567)` (`shown`: as for `place`).
    public func description(shown: UInt64? = nil) -> String {
        "\(endpoint.description)×\(count)" + qualifier(shown: shown, " (netns \(netns ?? 0))", " (host netns)")
    }

    private func qualifier(shown: UInt64?, _ foreign: String, _ host: String) -> String {
        if netns == shown { return "" }
        return netns == nil ? host : foreign
    }
}

/// A peer as the join counts it: the endpoint within its namespace.
struct PeerKey: Hashable {
    var endpoint: Endpoint
    var netns: UInt64?
}

/// ProcessEntry is one process and the sampled sockets it holds.
public struct ProcessEntry: Hashable, Sendable {
    public var details: ProcessDetails
    /// Inodes of the sampled sockets this process holds, ascending.
    public var inodes: [UInt64]
    /// Remote endpoints by count, most first.
    public var peers: [PeerCount]
    public var socketCount: Int { inodes.count }

    public init(details: ProcessDetails, inodes: [UInt64], peers: [PeerCount]) {
        self.details = details
        self.inodes = inodes
        self.peers = peers
    }
}

/// Snapshot is one sample of the kernel's sockets joined with their owning processes.
public struct Snapshot: Sendable {
    public var source: SocketSource
    public var states: Set<TCPState>
    /// Every socket with its owners; empty when the join was asked not to keep them (the
    /// daemon needs only the per-process view, and 50k of these cost megabytes).
    public var sockets: [SnapshotSocket]
    /// Sorted by socket count (most first), then pid.
    public var processes: [ProcessEntry]
    public var statistics: ScanStatistics
    public private(set) var total: Int
    public private(set) var unowned: Int
    /// Unowned sockets (inode not 0) while some processes' fd tables could not be read: their
    /// owner may be among those. Non-zero means attribution is degraded.
    public private(set) var ownerUnreadable: Int
    /// Unowned sockets with inode 0: connections waiting in a listener's accept queue.
    public private(set) var listenBacklog = 0
    /// Unowned sockets that some process should hold but none does (not the listen backlog,
    /// not a socket of a process we may not read): the host-wide `unowned` alert's count.
    public var unownedHeld: Int { max(0, unowned - listenBacklog - ownerUnreadable) }
    /// Processes holding sampled sockets left out past `maxProcesses` (the fewest sockets).
    public private(set) var untracked = 0

    public init(
        source: SocketSource, states: Set<TCPState>, sockets: [SnapshotSocket],
        processes: [ProcessEntry], statistics: ScanStatistics
    ) {
        self.source = source
        self.states = states
        self.sockets = sockets
        self.processes = processes
        self.statistics = statistics
        total = sockets.count
        unowned = sockets.reduce(0) { $0 + ($1.owners.isEmpty ? 1 : 0) }
        listenBacklog = sockets.reduce(0) { $0 + ($1.owners.isEmpty && $1.record.inode == 0 ? 1 : 0) }
        ownerUnreadable = sockets.reduce(0) { $0 + ($1.unownedReason == .ownerUnreadable ? 1 : 0) }
    }

    public static func join(
        records: [SocketRecord], owners: [UInt64: [Int32]], details: [Int32: ProcessDetails],
        statistics: ScanStatistics, source: SocketSource, states: Set<TCPState>
    ) -> Snapshot {
        join(
            records: records, owners: OwnerMap(owners), details: details, statistics: statistics, source: source,
            states: states)
    }

    /// At least this many processes holding exactly the same sockets (forked children of a
    /// leaker) are tracked as one: the oldest, with the others counted (`sharedWith`). Below
    /// it, each is its own row (a parent and a few workers sharing some sockets).
    public static let groupAbove = 16
    /// Processes (after grouping) tracked at most; the rest, those with the fewest sockets,
    /// are counted in `untracked` and said. Another user can fork without limit: what the
    /// daemon keeps per process must not grow with it.
    public static let defaultMaxProcesses = 2000

    /// Joins the kernel's socket records with the fd owners found in /proc.
    /// - Parameters:
    ///   - owners: socket inode -> pids holding an fd to it.
    ///   - details: pid -> its details; an owner pid without details (it exited while we read
    ///     it) is dropped.
    ///   - keepSockets: false to build only the per-process view and the counts.
    ///   - maxProcesses: processes (after grouping sharers) kept, most sockets first.
    public static func join(
        records: [SocketRecord], owners: OwnerMap, details: [Int32: ProcessDetails],
        statistics: ScanStatistics, source: SocketSource, states: Set<TCPState>,
        keepSockets: Bool = true, foreign: [UInt64: UInt64] = [:],
        maxProcesses: Int = defaultMaxProcesses
    ) -> Snapshot {
        var sockets = [SnapshotSocket]()
        if keepSockets { sockets.reserveCapacity(records.count) }
        // Pass 1: per pid, a signature of the set of sockets it holds (count and a sum of
        // mixed inodes; inodes are the kernel's, not chosen by users) — no per-pid arrays yet.
        var signature = [Int32: (sum: UInt64, count: Int)]()
        var unowned = 0
        var ownerUnreadable = 0
        var listenBacklog = 0
        for record in records {
            var owned = false
            var socketOwners = [Int32]()
            if record.inode != 0 {
                let mixed = mix(record.inode)
                owners.forEachOwner(of: record.inode) { pid in
                    guard details[pid] != nil else { return }
                    owned = true
                    if keepSockets { socketOwners.append(pid) }
                    let old = signature[pid] ?? (0, 0)
                    signature[pid] = (old.sum &+ mixed, old.count + 1)
                }
            }
            if !owned {
                unowned += 1
                if record.inode == 0 { listenBacklog += 1 }
                if record.inode != 0 && statistics.mayHide(uid: record.uid) { ownerUnreadable += 1 }
            }
            guard keepSockets else { continue }
            var reason: UnownedReason?
            if !owned {
                reason =
                    record.inode == 0
                    ? .listenBacklog : (statistics.mayHide(uid: record.uid) ? .ownerUnreadable : .noOwnerFound)
            }
            sockets.append(
                SnapshotSocket(
                    record: record, owners: socketOwners.sorted(), unownedReason: reason,
                    netns: record.inode == 0 ? nil : foreign[record.inode]))
        }
        // Group identical sets; a large group is tracked as its oldest member.
        var groups = [SetKey: [Int32]]()
        for (pid, sig) in signature { groups[SetKey(sum: sig.sum, count: sig.count), default: []].append(pid) }
        var tracked = [(pid: Int32, count: Int, shared: SharedHolders?)]()
        for (key, pids) in groups {
            if pids.count >= groupAbove {
                let sorted = pids.sorted()
                let leader = pids.min { (details[$0]!.identity.startTime, $0) < (details[$1]!.identity.startTime, $1) }!
                let others = sorted.filter { $0 != leader }
                tracked.append((leader, key.count, SharedHolders(count: others.count, pids: Array(others.prefix(5)))))
            } else {
                for pid in pids { tracked.append((pid, key.count, nil)) }
            }
        }
        tracked.sort { ($1.count, $0.pid) < ($0.count, $1.pid) }
        var untracked = 0
        if tracked.count > maxProcesses {
            for dropped in tracked[maxProcesses...] { untracked += 1 + (dropped.shared?.count ?? 0) }
            tracked.removeSubrange(maxProcesses...)
        }
        // Pass 2: inodes and peers for the tracked processes only.
        var slot = [Int32: Int]()
        slot.reserveCapacity(tracked.count)
        for (index, entry) in tracked.enumerated() { slot[entry.pid] = index }
        var inodesBySlot = tracked.map { entry -> [UInt64] in
            var inodes = [UInt64]()
            inodes.reserveCapacity(entry.count)
            return inodes
        }
        var peersBySlot = [[PeerKey: Int]](repeating: [:], count: tracked.count)
        for record in records where record.inode != 0 {
            let netns = foreign[record.inode]
            owners.forEachOwner(of: record.inode) { pid in
                guard let index = slot[pid] else { return }
                inodesBySlot[index].append(record.inode)
                peersBySlot[index][PeerKey(endpoint: record.remote, netns: netns), default: 0] += 1
            }
        }
        // By inode (unique but for the inode-0 backlog sockets), then by endpoints.
        sockets.sort {
            $0.record.inode != $1.record.inode
                ? $0.record.inode < $1.record.inode
                : ($0.record.local, $0.record.remote) < ($1.record.local, $1.record.remote)
        }
        var processes = [ProcessEntry]()
        processes.reserveCapacity(tracked.count)
        for (index, entry) in tracked.enumerated() {
            guard var info = details[entry.pid] else { continue }
            info.sharedWith = entry.shared
            let peers = peersBySlot[index].map {
                PeerCount(endpoint: $0.key.endpoint, count: $0.value, netns: $0.key.netns)
            }
            .sorted { ($1.count, $0.endpoint, $0.netns ?? 0) < ($0.count, $1.endpoint, $1.netns ?? 0) }
            processes.append(ProcessEntry(details: info, inodes: inodesBySlot[index].sorted(), peers: peers))
        }
        var snapshot = Snapshot(
            source: source, states: states, sockets: sockets, processes: processes, statistics: statistics)
        snapshot.total = records.count
        snapshot.unowned = unowned
        snapshot.ownerUnreadable = ownerUnreadable
        snapshot.listenBacklog = listenBacklog
        snapshot.untracked = untracked
        return snapshot
    }

    /// A socket set's signature: how many, and the sum of their mixed inodes.
    struct SetKey: Hashable {
        var sum: UInt64
        var count: Int
    }

    /// splitmix64's finalizer: spreads an inode over 64 bits, so sums of distinct sets differ.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Keeps only the processes matching any given pid or unit (glob) and the sockets they hold.
    public func filtered(pids: Set<Int32>, units: [String]) -> Snapshot {
        if pids.isEmpty && units.isEmpty { return self }
        let kept = processes.filter { entry in
            pids.contains(entry.details.pid) || units.contains { Glob.matches($0, entry.details.unit ?? "") }
        }
        let keptPids = Set(kept.map(\.details.pid))
        let keptSockets = sockets.filter { !$0.owners.isEmpty && $0.owners.contains(where: keptPids.contains) }
        return Snapshot(source: source, states: states, sockets: keptSockets, processes: kept, statistics: statistics)
    }
}
