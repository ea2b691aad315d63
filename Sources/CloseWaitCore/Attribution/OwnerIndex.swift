/// OwnerIndex finds the processes holding sampled socket inodes, tick after tick, without a
/// full /proc/*/fd walk each time. Its decisions are pure; what it reads comes from an
/// `FdTableSource` (the Linux layer's /proc reader, or a table of values in tests).
///
/// - A **full walk** every `fullScanInterval` scans every process for every sampled inode.
/// - Between walks, links to inodes still sampled are **kept without reading them again**: a
///   socket still in CLOSE_WAIT with the same inode is still held by someone; the full walk
///   bounds how long a socket that moved (fd passing, a fork then a close) keeps its old
///   owner. Each holder is asked only its open-fd count, which also shows it is still there.
/// - **New inodes** are searched in the likeliest owners first: processes started since the
///   index last looked, then current holders (those that gained sockets most recently
///   first, their known fds skipped), then processes of the sockets' uid, then the rest;
///   the search stops once every new inode has an owner. Inodes no process held at the last
///   full walk are not searched for again until the next one.
/// - **Identity** is (pid, start time): cached details are reused only for holders whose
///   known sockets are still sampled; any other holder's start time is read again, and a
///   different one (a reused pid) drops the cache.
public final class OwnerIndex {
    public var source: any FdTableSource
    /// 0: every call is a full walk (what `snapshot` does).
    public var fullScanInterval: Double
    /// Processes scanned per batch of a search (the source may read a batch in parallel).
    public var searchBatch = 32
    /// Called after each chunk of a full walk and each batch of a search: the walk is making
    /// progress (the daemon feeds the watchdog from it, so a long walk over millions of fds
    /// is not taken for a hang, while a read that never returns still is).
    public var progress: (() -> Void)?
    /// File descriptors a tick's search for new sockets' owners may read (about 0.3 s here).
    /// Another user can hold millions of idle fds and make an unownable CLOSE_WAIT socket a
    /// second (parked in a unix socket's queue): without a budget every tick became a full
    /// walk. Past it, the search goes on next tick where it stopped (a "lap" over every
    /// process), and the sockets still waiting are counted as not yet searched.
    public var searchBudget = 100_000
    /// The current lap of a search that outlasted a tick: processes searched since it began,
    /// and the inodes it is for. When every process has been searched, those still without
    /// an owner are left alone until the next full walk.
    private var lapSearched = Set<Int32>()
    /// Open fds per process at the last full walk: batches are sized to fit the budget.
    private var averageFds = 64
    private var fdsAtLastWalk = 0
    private var lapInodes = Set<UInt64>()

    private var links: [Int32: [FdLinkEntry]] = [:]
    private var unownedAtFullScan = Set<UInt64>()
    /// Processes the last full walk could not read: until the next one, the sockets it found
    /// no owner for may be theirs (attribution stays "degraded" between walks).
    private var unreadableAtFullScan = 0
    private var unreadableUIDsAtFullScan = Set<UInt32>()
    private var details: [Int32: ProcessDetails] = [:]
    private var lastFullScan: Double?
    /// Every pid seen at the last full walk or searched since: a pid not in here is a process
    /// started since, the likeliest owner of a socket no known holder has.
    private var knownPids = Set<Int32>()
    /// The tick at which each holder last gained a socket: a process that just gained some
    /// (a growing leak, a worker still filling its pool) is searched before the others.
    private var lastGain = [Int32: Int]()
    private var tick = 0
    /// Each holder's open-fd count when it was last counted exactly (a scan), and how many
    /// sampled sockets it held then: where the source cannot count cheaply, the count moves
    /// with the sampled sockets between scans (the leak is what we watch) and is exact again
    /// at the next full walk.
    private var counted = [Int32: (fds: Int, links: Int)]()

    /// What the last call did, for benchmarks, tests and the status line.
    public struct TickReport: Sendable, Equatable {
        public enum Kind: String, Sendable { case idle, incremental, full }
        public var kind = Kind.idle
        /// Known links kept without a read because their socket is still sampled.
        public var linksKept = 0
        /// Processes scanned (a full walk: all of them).
        public var processesSearched = 0
        /// Inodes that had no known owner at the start of the tick.
        public var newInodes = 0
        /// The pids scanned, in order (tests check the search order).
        public var searched: [Int32] = []
        /// Cached holders whose pid another process had taken (their start time changed).
        public var reusedPids = 0
    }
    public private(set) var lastReport = TickReport()

    public struct Attribution: Sendable {
        public var owners = OwnerMap()
        public var details: [Int32: ProcessDetails] = [:]
        public var statistics = ScanStatistics()
    }

    public init(source: any FdTableSource, fullScanInterval: Double = 0) {
        self.source = source
        self.fullScanInterval = fullScanInterval
    }

    /// Forces the next call to walk every process.
    public func invalidate() { lastFullScan = nil }

    /// Throws only when the processes cannot be listed at all: then nothing can be
    /// attributed and the tick must fail rather than report "no owners".
    public func attribute(records: [SocketRecord], now: Double) throws -> Attribution {
        var wanted = Set<UInt64>()
        wanted.reserveCapacity(records.count)
        for record in records where record.inode != 0 { wanted.insert(record.inode) }
        if wanted.isEmpty {
            // Nothing to attribute: forget everything, read nothing.
            links.removeAll(keepingCapacity: false)
            details.removeAll(keepingCapacity: false)
            knownPids.removeAll(keepingCapacity: false)
            lastGain.removeAll()
            lastFullScan = nil
            unownedAtFullScan.removeAll()
            unreadableAtFullScan = 0
            unreadableUIDsAtFullScan = []
            lastReport = TickReport(kind: .idle)
            return Attribution()
        }
        if let last = lastFullScan, fullScanInterval > 0, now - last < fullScanInterval {
            return try incremental(wanted: wanted, records: records)
        }
        let attribution = try fullScan(wanted: wanted)
        lastFullScan = now
        return attribution
    }

    func fullScan(wanted: Set<UInt64>) throws -> Attribution {
        lapSearched.removeAll()
        lapInodes.removeAll()
        defer {
            averageFds = max(1, lastReport.processesSearched > 0 ? fdsAtLastWalk / lastReport.processesSearched : 64)
        }
        var stats = ScanStatistics()
        var newLinks = [Int32: [FdLinkEntry]]()
        var fdCounts = [Int32: Int]()
        var found = Set<UInt64>()
        let pids = try source.listProcesses()
        knownPids = Set(pids)
        // In chunks, each absorbed before the next is read, and identical link tables (forked
        // children holding their parent's fds) stored once: ten thousand sharers of 150
        // sockets cost one table, not 1.5 million links at once.
        var interned = [[FdLinkEntry]: [FdLinkEntry]]()
        var start = 0
        while start < pids.count {
            let chunk = Array(pids[start..<min(pids.count, start + 512)])
            start += chunk.count
            for (pid, result) in zip(chunk, source.scan(chunk.map { FdScanRequest(pid: $0, wanted: wanted) })) {
                for link in absorb(pid, result, into: &newLinks, fdCounts: &fdCounts, stats: &stats) {
                    found.insert(link.inode)
                }
                if let table = newLinks[pid] {
                    if let shared = interned[table] { newLinks[pid] = shared } else { interned[table] = table }
                }
            }
            progress?()
        }
        links = newLinks
        counted = [:]
        for (pid, count) in fdCounts { counted[pid] = (count, newLinks[pid]?.count ?? 0) }
        unownedAtFullScan = wanted.subtracting(found)
        unreadableAtFullScan = stats.permissionDenied
        unreadableUIDsAtFullScan = stats.unreadableUIDs
        details.removeAll(keepingCapacity: true)  // re-read: exec may have changed comm or exe
        lastReport = TickReport(
            kind: .full, linksKept: 0, processesSearched: stats.processesScanned, newInodes: wanted.count,
            searched: pids)
        fdsAtLastWalk = stats.fdsRead
        return finish(fdCounts: fdCounts, stats: stats, verified: [])
    }

    func incremental(wanted: Set<UInt64>, records: [SocketRecord]) throws -> Attribution {
        tick += 1
        var stats = ScanStatistics()
        var report = TickReport(kind: .incremental)
        var newLinks = [Int32: [FdLinkEntry]]()
        var fdCounts = [Int32: Int]()
        // Holders whose known sockets are still sampled: the same process as before (a reused
        // pid cannot hold the dead process's sockets).
        var verifiedPids = Set<Int32>()
        var toCount = [(pid: Int32, links: [FdLinkEntry])]()
        toCount.reserveCapacity(links.count)
        // Holders whose tables are one shared array (forked children holding their parent's
        // fds, stored once by the full walk) stay one array: a table whose links are all still
        // sampled is kept as it is, and the same filtered copy serves every sharer.
        var filtered = [TableID: [FdLinkEntry]]()
        for (pid, pidLinks) in links {
            let id = TableID(pidLinks)
            let alive: [FdLinkEntry]
            if let done = filtered[id] {
                alive = done
            } else {
                alive =
                    pidLinks.allSatisfy { wanted.contains($0.inode) }
                    ? pidLinks : pidLinks.filter { wanted.contains($0.inode) }
                filtered[id] = alive
            }
            if !alive.isEmpty { toCount.append((pid, alive)) }
        }
        filtered = [:]
        // A large group of sharers is checked in part each tick: the oldest members (the one
        // shown is among them) and a window that moves on each tick; the others keep their
        // links and last fd count until their turn or the next full walk. Ten thousand
        // sharers cost a tick about a hundred reads, not twenty thousand.
        var members = [TableID: [Int]]()
        for (index, item) in toCount.enumerated() { members[TableID(item.links), default: []].append(index) }
        var unchecked = Set<Int>()
        for (_, group) in members where group.count > Self.sharerChecks + Self.rotatingChecks {
            let ordered = group.sorted {
                (details[toCount[$0].pid]?.identity.startTime ?? 0, toCount[$0].pid) < (
                    details[toCount[$1].pid]?.identity.startTime ?? 0, toCount[$1].pid
                )
            }
            let rest = ordered.dropFirst(Self.sharerChecks)
            let window = (tick * Self.rotatingChecks) % rest.count
            let turn = Set((0..<Self.rotatingChecks).map { rest[rest.startIndex + (window + $0) % rest.count] })
            for index in rest where !turn.contains(index) && details[toCount[index].pid] != nil {
                unchecked.insert(index)
            }
        }
        members = [:]
        var foundSorted = [UInt64]()
        foundSorted.reserveCapacity(wanted.count)
        var foundTables = Set<TableID>()
        let checked = toCount.indices.filter { !unchecked.contains($0) }
        var counts = [Result<Int?, FdTableError>?](repeating: nil, count: toCount.count)
        for (index, count) in zip(checked, source.fdCounts(checked.map { toCount[$0].pid })) { counts[index] = count }
        for index in unchecked {
            let pid = toCount[index].pid
            counts[index] = .success(counted[pid].map { $0.fds } ?? details[pid]?.fdOpen)
        }
        // Each cached holder's start time, read after its count: a holder that exited and
        // whose pid a new process took (the sockets living on in a child) must not keep them
        // for a whole full-walk interval under the newcomer's name. One small read each.
        let cachedHolders = checked.filter { details[toCount[$0].pid] != nil }
        var starts = [Int: Result<UInt64, FdTableError>]()
        for (index, start) in zip(cachedHolders, source.startTimes(cachedHolders.map { toCount[$0].pid })) {
            starts[index] = start
        }
        for (position, item) in toCount.enumerated() {
            report.linksKept += item.links.count
            guard var result = counts[position] else { continue }
            if case .success = result, let start = starts[position], let known = details[item.pid] {
                switch start {
                case let .success(time) where time != known.identity.startTime:
                    // Another process now: its sockets are searched for below.
                    details[item.pid] = nil
                    report.reusedPids += 1
                    continue
                case let .failure(error): result = .failure(error)
                default: break
                }
            }
            // A process with no open fd holds no socket: an exited one not yet reaped (a
            // zombie's fd directory is empty) is gone, and its sockets are searched for.
            if case .success(0?) = result { result = .failure(.vanished) }
            switch result {
            case let .success(count):
                newLinks[item.pid] = item.links
                if let count {
                    fdCounts[item.pid] = count
                } else if let last = counted[item.pid] {
                    fdCounts[item.pid] = max(item.links.count, last.fds + item.links.count - last.links)
                }
                verifiedPids.insert(item.pid)
                if foundTables.insert(TableID(item.links)).inserted {
                    for link in item.links { foundSorted.append(link.inode) }
                }
            case let .failure(error):
                // Gone (its sockets, if still sampled, are searched below) or unreadable.
                stats.count(error)
            }
        }
        // A sorted array, not a Set: half the memory at 50k sockets, and only searched here.
        foundSorted.sort()
        foundTables = []
        func isFound(_ inode: UInt64) -> Bool {
            var low = 0, high = foundSorted.count
            while low < high {
                let mid = (low + high) / 2
                if foundSorted[mid] < inode { low = mid + 1 } else { high = mid }
            }
            return low < foundSorted.count && foundSorted[low] == inode
        }
        unownedAtFullScan.formIntersection(wanted)
        var missing = Set<UInt64>()
        for inode in wanted where !isFound(inode) && !unownedAtFullScan.contains(inode) { missing.insert(inode) }
        foundSorted = []
        report.newInodes = missing.count
        lapInodes.formIntersection(missing)
        if lapInodes.isEmpty { lapSearched.removeAll() }
        if !missing.isEmpty {
            var searched = Set<Int32>()
            let budgetEnd = stats.fdsRead + searchBudget
            var overBudget: Bool { stats.fdsRead >= budgetEnd }
            // Searches the given processes, in batches, until every new inode has an owner or
            // the budget is spent; known links of a process are skipped, not read again.
            func search(_ candidates: [Int32]) {
                let pending = candidates.filter { !searched.contains($0) }
                var start = 0
                while start < pending.count && !missing.isEmpty && !overBudget {
                    let fits = max(1, (budgetEnd - stats.fdsRead) / averageFds)
                    let batch = Array(pending[start..<min(pending.count, start + min(searchBatch, fits))])
                    start += batch.count
                    searched.formUnion(batch)
                    report.searched += batch
                    let requests = batch.map {
                        FdScanRequest(pid: $0, wanted: missing, skip: Set((newLinks[$0] ?? []).map(\.fd)))
                    }
                    for (pid, result) in zip(batch, source.scan(requests)) {
                        let gained = absorb(pid, result, into: &newLinks, fdCounts: &fdCounts, stats: &stats)
                        if case let .success(table) = result, !gained.isEmpty {
                            counted[pid] = (table.fdCount, newLinks[pid]?.count ?? 0)
                        }
                        if !gained.isEmpty { lastGain[pid] = tick }
                        for link in gained { missing.remove(link.inode) }
                    }
                    progress?()
                }
            }
            let all = try source.listProcesses()
            // 1. Processes started since we last looked (a new leaker, or a replaced worker);
            //    those the budget left out stay new for the next tick.
            search(all.filter { !knownPids.contains($0) })
            knownPids.formUnion(overBudget ? searched : Set(all))
            // 2. Processes already holding sampled sockets: those that gained some most
            //    recently first, then the biggest.
            search(
                newLinks.keys.sorted {
                    (lastGain[$0] ?? 0, newLinks[$0]!.count, $1) > (lastGain[$1] ?? 0, newLinks[$1]!.count, $0)
                })
            if !missing.isEmpty && !overBudget {
                // 3. Processes of the uid that created the sockets, 4. everyone else — those
                //    this lap has not searched yet.
                if lapInodes.isEmpty { lapInodes = missing }
                let uids = Set(records.lazy.filter { missing.contains($0.inode) }.map(\.uid))
                let rest = all.filter { !searched.contains($0) && !lapSearched.contains($0) }
                let sameUID = rest.filter { source.uid(of: $0).map(uids.contains) ?? false }
                search(sameUID)
                search(rest)
            }
            if !missing.isEmpty {
                lapSearched.formUnion(searched)
                if lapInodes.isEmpty { lapInodes = missing }
                if all.allSatisfy(lapSearched.contains) {
                    // Searched everywhere and still no owner: do not search again until the
                    // next full walk. Inodes that joined mid-lap start a lap of their own.
                    unownedAtFullScan.formUnion(missing.intersection(lapInodes))
                    lapInodes = missing.subtracting(lapInodes)
                    lapSearched.removeAll()
                }
                stats.notYetSearched = missing.subtracting(unownedAtFullScan).count
            } else {
                lapInodes.removeAll()
                lapSearched.removeAll()
            }
            report.processesSearched = searched.count
        }
        links = newLinks
        lastGain = lastGain.filter { newLinks[$0.key] != nil }
        counted = counted.filter { newLinks[$0.key] != nil }
        lastReport = report
        stats.permissionDenied = max(stats.permissionDenied, unreadableAtFullScan)
        stats.unreadableUIDs.formUnion(unreadableUIDsAtFullScan)
        return finish(fdCounts: fdCounts, stats: stats, verified: verifiedPids)
    }

    /// Adds one process's scan to the tick's links, fd counts and statistics; returns the
    /// wanted sockets it held.
    private func absorb(
        _ pid: Int32, _ result: Result<FdTable, FdTableError>, into links: inout [Int32: [FdLinkEntry]],
        fdCounts: inout [Int32: Int], stats: inout ScanStatistics
    ) -> [FdLinkEntry] {
        stats.processesScanned += 1
        switch result {
        case let .success(table):
            stats.fdsRead += table.fdCount
            guard !table.links.isEmpty else { return [] }
            links[pid, default: []].append(contentsOf: table.links)
            fdCounts[pid] = table.fdCount
            return table.links
        case let .failure(error):
            stats.count(error)
            if error == .permissionDenied { stats.unreadableUIDs.insert(source.uid(of: pid) ?? .max) }
            return []
        }
    }

    /// Joins links into inode -> owners and reads (or reuses) each owner's details. Cached
    /// details are reused as they are only for `verified` pids; any other holder's start time
    /// is read again, and a different one (the pid was reused by a new process) drops the
    /// cache, so a new process is never shown under the old one's name, rule or history.
    func finish(fdCounts: [Int32: Int], stats: ScanStatistics, verified: Set<Int32>) -> Attribution {
        var result = Attribution()
        // One entry per socket, however many share it (not one per link: 1.5 million slots
        // for ten thousand sharers of 150 sockets).
        result.owners = OwnerMap(minimumCapacity: min(links.values.reduce(0) { $0 + $1.count }, Self.capacityHint))
        result.statistics = stats
        var kept = [Int32: ProcessDetails]()
        for (pid, pidLinks) in links {
            var cached = details[pid]
            if let known = cached, !verified.contains(pid) {
                switch source.startTime(of: pid) {
                case let .success(start):
                    if start != known.identity.startTime { cached = nil }
                case let .failure(error):
                    result.statistics.count(error)
                    continue
                }
            }
            var info: ProcessDetails
            if let cached {
                info = cached
            } else {
                switch source.details(of: pid, fdOpen: 0) {
                case let .success(read): info = read
                case let .failure(error):
                    result.statistics.count(error)
                    continue
                }
            }
            info.fdOpen = fdCounts[pid] ?? info.fdOpen
            kept[pid] = info
            for link in pidLinks { result.owners.add(pid, for: link.inode) }
        }
        details = kept
        result.details = kept
        return result
    }

    /// Members of a group of sharers checked every tick, and more checked in turn.
    static let sharerChecks = 16
    static let rotatingChecks = 64
    /// Sockets a tick usually holds at most; the map grows past it if need be.
    static let capacityHint = 1 << 16

    /// A link table by its storage: sharers' tables are one array (interned by the full walk).
    struct TableID: Hashable {
        let address: UInt
        let count: Int
        init(_ table: [FdLinkEntry]) {
            address = table.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            count = table.count
        }
    }
}
