import CloseWaitCore
import Glibc

/// OwnerIndex finds the processes holding sampled socket inodes, tick after tick, without a
/// full /proc/*/fd walk each time. It remembers every (pid, fd) -> inode link it found and
/// keeps those whose socket is still in CLOSE_WAIT without reading them again (a socket in
/// CLOSE_WAIT is still held by someone), opening each holder's fd directory once a tick for
/// its open-fd count; it searches only for
/// inodes it has not seen, in the likeliest owners first (processes started since it last
/// looked, then processes already holding sampled sockets, then processes of the socket's
/// uid, then the rest), stopping once each new inode has an owner;
/// and it walks every process in full every `fullScanInterval` seconds to find what the
/// shortcuts miss: a second owner of an already attributed socket (a fork or fd passing)
/// stays unseen until then. Inodes no process held at the last full walk are not searched
/// for again until the next one.
public final class OwnerIndex {
    public var scanner: FdScanner
    public var reader: ProcessReader
    /// 0: every call is a full walk (what `snapshot` does).
    public var fullScanInterval: Double

    private var links: [Int32: [(fd: Int32, inode: UInt64)]] = [:]
    private var unownedAtFullScan = Set<UInt64>()
    /// Processes the last full walk could not read: until the next one, the sockets it found
    /// no owner for may be theirs (attribution stays "degraded" between walks).
    private var unreadableAtFullScan = 0
    private var details: [Int32: ProcessDetails] = [:]
    private var lastFullScan: Double?
    /// Every pid seen at the last full walk or searched since: a pid not in here is a process
    /// started since, the likeliest owner of a socket no known holder has.
    private var knownPids = Set<Int32>()
    /// The tick at which each holder last gained a socket: a process that just gained some
    /// (a growing leak, a worker still filling its pool) is searched before the others.
    private var lastGain = [Int32: Int]()
    private var tick = 0

    /// What the last call did, for benchmarks and the status line.
    public struct TickReport: Sendable {
        public enum Kind: String, Sendable { case idle, incremental, full }
        public var kind = Kind.idle
        /// Known links kept without a read because their socket is still sampled.
        public var linksKept = 0
        public var processesSearched = 0
        public var newInodes = 0
    }
    public private(set) var lastReport = TickReport()

    public struct Attribution: Sendable {
        public var owners = OwnerMap()
        public var details: [Int32: ProcessDetails] = [:]
        public var statistics = ScanStatistics()
    }

    public init(proc: ProcFS = ProcFS(), fullScanInterval: Double = 0) {
        scanner = FdScanner(proc: proc)
        reader = ProcessReader(proc: proc)
        self.fullScanInterval = fullScanInterval
    }

    /// Forces the next call to walk every process.
    public func invalidate() { lastFullScan = nil }

    /// Throws only when /proc itself cannot be listed: then nothing can be attributed and the
    /// tick must fail rather than report "no owners".
    public func attribute(records: [SocketRecord], now: Double) throws(Errno) -> Attribution {
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

    func fullScan(wanted: Set<UInt64>) throws(Errno) -> Attribution {
        var stats = ScanStatistics()
        var newLinks = [Int32: [(fd: Int32, inode: UInt64)]]()
        var fdCounts = [Int32: Int]()
        var found = Set<UInt64>()
        let pids = try scanner.proc.pids()
        knownPids = Set(pids)
        for (pid, result) in zip(pids, ParallelScan.scan(scanner, pids: pids, wanted: wanted)) {
            for link in absorb(pid, result, into: &newLinks, fdCounts: &fdCounts, stats: &stats) { found.insert(link.inode) }
        }
        links = newLinks
        unownedAtFullScan = wanted.subtracting(found)
        unreadableAtFullScan = stats.permissionDenied
        details.removeAll(keepingCapacity: true)  // re-read: exec may have changed comm or exe
        lastReport = TickReport(kind: .full, linksKept: 0, processesSearched: stats.processesScanned, newInodes: wanted.count)
        return finish(fdCounts: fdCounts, stats: stats, verified: [])
    }

    func incremental(wanted: Set<UInt64>, records: [SocketRecord]) throws(Errno) -> Attribution {
        tick += 1
        var stats = ScanStatistics()
        var report = TickReport(kind: .incremental)
        var newLinks = [Int32: [(fd: Int32, inode: UInt64)]]()
        var fdCounts = [Int32: Int]()
        // Pids whose known sockets are still sampled: the same process as before (a reused
        // pid cannot hold the dead process's sockets).
        var verifiedPids = Set<Int32>()
        // Known links to sockets still in CLOSE_WAIT are kept without reading them again: a
        // socket in CLOSE_WAIT with the same inode is still held by someone, and the full walk
        // every `fullScanInterval` catches one that moved (fd passing, a fork then a close).
        // Each holder's fd directory is opened once, for its open-fd count and to see that it
        // is still there; links of holders that are gone are dropped and their sockets searched.
        var toCount = [(pid: Int32, links: [(fd: Int32, inode: UInt64)])]()
        toCount.reserveCapacity(links.count)
        for (pid, pidLinks) in links {
            let alive = pidLinks.filter { wanted.contains($0.inode) }
            if !alive.isEmpty { toCount.append((pid, alive)) }
        }
        let scanner = scanner
        let counted = ParallelScan.map(toCount.map(\.pid), minimumPerWorker: 256) { pid in
            Result { () throws(Errno) in try scanner.fdCount(pid: pid) }
        }
        var foundSorted = [UInt64]()
        foundSorted.reserveCapacity(wanted.count)
        for (item, result) in zip(toCount, counted) {
            report.linksKept += item.links.count
            switch result {
            case let .success(count):
                newLinks[item.pid] = item.links
                fdCounts[item.pid] = count
                verifiedPids.insert(item.pid)
                for link in item.links { foundSorted.append(link.inode) }
            case let .failure(error):
                stats.count(error)
            }
        }
        // A sorted array, not a Set: half the memory at 50k sockets, and only searched here.
        foundSorted.sort()
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
        if !missing.isEmpty {
            var searched = Set<Int32>()
            // Searches the given processes, in parallel batches, until every new inode has an
            // owner; known links of a process are skipped, not read again.
            func search(_ candidates: [Int32]) {
                let pending = candidates.filter { !searched.contains($0) }
                var start = 0
                while start < pending.count && !missing.isEmpty {
                    let batch = Array(pending[start..<min(pending.count, start + 32)])
                    start += batch.count
                    searched.formUnion(batch)
                    let wanted = missing
                    let skips = batch.map { Set((newLinks[$0] ?? []).map(\.fd)) }
                    let scanner = scanner
                    let results = ParallelScan.map(Array(zip(batch, skips)).map(SearchItem.init), minimumPerWorker: 4) { item in
                        Result { () throws(Errno) in try scanner.scan(pid: item.pid, wanted: wanted, skip: item.skip) }
                    }
                    for (pid, result) in zip(batch, results) {
                        let gained = absorb(pid, result, into: &newLinks, fdCounts: &fdCounts, stats: &stats)
                        if !gained.isEmpty { lastGain[pid] = tick }
                        for link in gained { missing.remove(link.inode) }
                    }
                }
            }
            let all = try scanner.proc.pids()
            // 1. Processes started since we last looked (a new leaker, or a replaced worker).
            search(all.filter { !knownPids.contains($0) })
            knownPids.formUnion(all)
            // 2. Processes already holding sampled sockets: those that gained some most
            //    recently first, then the biggest.
            search(newLinks.keys.sorted {
                (lastGain[$0] ?? 0, newLinks[$0]!.count) > (lastGain[$1] ?? 0, newLinks[$1]!.count)
            })
            if !missing.isEmpty {
                // 3. Processes of the uid that created the sockets, 4. everyone else.
                let uids = Set(records.lazy.filter { missing.contains($0.inode) }.map(\.uid))
                let rest = all.filter { !searched.contains($0) }
                let sameUID = rest.filter { scanner.uid(pid: $0).map(uids.contains) ?? false }
                search(sameUID)
                search(rest)
                // Searched everywhere and still no owner: do not search again until the next full walk.
                if searched.count >= all.count { unownedAtFullScan.formUnion(missing) }
            }
            report.processesSearched = searched.count
        }
        links = newLinks
        lastGain = lastGain.filter { newLinks[$0.key] != nil }
        lastReport = report
        stats.permissionDenied = max(stats.permissionDenied, unreadableAtFullScan)
        return finish(fdCounts: fdCounts, stats: stats, verified: verifiedPids)
    }

    /// Adds one process's scan to the tick's links, fd counts and statistics; returns the
    /// wanted sockets it held.
    private func absorb(_ pid: Int32, _ result: Result<FdScanner.ProcessFds, Errno>,
                        into links: inout [Int32: [(fd: Int32, inode: UInt64)]], fdCounts: inout [Int32: Int],
                        stats: inout ScanStatistics) -> [(fd: Int32, inode: UInt64)] {
        stats.processesScanned += 1
        switch result {
        case let .success(fds):
            stats.fdsRead += fds.fdCount
            guard !fds.sockets.isEmpty else { return [] }
            links[pid, default: []].append(contentsOf: fds.sockets)
            fdCounts[pid] = fds.fdCount
            return fds.sockets
        case let .failure(error):
            stats.count(error)
            return []
        }
    }

    /// Joins links into inode -> owners and reads (or reuses) each owner's details. Cached
    /// details are reused as they are only for `verified` pids; any other holder's start time
    /// is read again, and a different one (the pid was reused by a new process) drops the
    /// cache, so a new process is never shown under the old one's name, rule or history.
    func finish(fdCounts: [Int32: Int], stats: ScanStatistics, verified: Set<Int32>) -> Attribution {
        var result = Attribution()
        result.owners = OwnerMap(minimumCapacity: links.values.reduce(0) { $0 + $1.count })
        result.statistics = stats
        var kept = [Int32: ProcessDetails]()
        for (pid, pidLinks) in links {
            var info: ProcessDetails
            var cached = details[pid]
            if let known = cached, !verified.contains(pid) {
                switch Result(catching: { try reader.stat(pid: pid) }) {
                case let .success(stat):
                    if stat.startTime != known.identity.startTime { cached = nil }
                case let .failure(error):
                    result.statistics.count(error)
                    continue
                }
            }
            if let cached {
                info = cached
            } else {
                do {
                    info = try reader.details(pid: pid, fdOpen: 0)
                } catch {
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
}

/// A process to search and the fds already known there, Sendable for the parallel search.
struct SearchItem: Sendable {
    var pid: Int32
    var skip: Set<Int32>
}
