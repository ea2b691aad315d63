import CloseWaitCore
import Glibc

/// OwnerIndex finds the processes holding sampled socket inodes, tick after tick, without a
/// full /proc/*/fd walk each time. It remembers every (pid, fd) -> inode link it found and
/// re-reads just those links (one readlinkat each) on later ticks; it searches only for
/// inodes it has not seen, in the likeliest owners first (processes already holding sampled
/// sockets, then processes of the socket's uid), stopping once each new inode has an owner;
/// and it walks every process in full every `fullScanInterval` seconds to find what the
/// shortcuts miss: a second owner of an already attributed socket (a fork or fd passing)
/// stays unseen until then. Inodes no process held at the last full walk are not searched
/// for again until the next one.
public final class OwnerIndex {
    public let scanner: FdScanner
    public let reader: ProcessReader
    /// 0: every call is a full walk (what `snapshot` does).
    public var fullScanInterval: Double

    private var links: [Int32: [(fd: Int32, inode: UInt64)]] = [:]
    private var unownedAtFullScan = Set<UInt64>()
    private var details: [Int32: ProcessDetails] = [:]
    private var lastFullScan: Double?

    /// What the last call did, for benchmarks and the status line.
    public struct TickReport: Sendable {
        public enum Kind: String, Sendable { case idle, incremental, full }
        public var kind = Kind.idle
        public var linksVerified = 0
        public var processesSearched = 0
        public var newInodes = 0
    }
    public private(set) var lastReport = TickReport()

    public struct Attribution: Sendable {
        public var owners: [UInt64: [Int32]] = [:]
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

    public func attribute(records: [SocketRecord], now: Double) -> Attribution {
        var wanted = Set<UInt64>()
        wanted.reserveCapacity(records.count)
        for record in records where record.inode != 0 { wanted.insert(record.inode) }
        if wanted.isEmpty {
            // Nothing to attribute: forget everything, read nothing.
            links.removeAll(keepingCapacity: false)
            details.removeAll(keepingCapacity: false)
            unownedAtFullScan.removeAll()
            lastReport = TickReport(kind: .idle)
            return Attribution()
        }
        if let last = lastFullScan, fullScanInterval > 0, now - last < fullScanInterval {
            return incremental(wanted: wanted, records: records)
        }
        lastFullScan = now
        return fullScan(wanted: wanted)
    }

    func fullScan(wanted: Set<UInt64>) -> Attribution {
        var stats = ScanStatistics()
        var newLinks = [Int32: [(fd: Int32, inode: UInt64)]]()
        var fdCounts = [Int32: Int]()
        var found = Set<UInt64>()
        let pids = (try? scanner.proc.pids()) ?? []
        for (pid, result) in zip(pids, ParallelScan.scan(scanner, pids: pids, wanted: wanted)) {
            stats.processesScanned += 1
            switch result {
            case let .success(fds):
                stats.fdsRead += fds.fdCount
                guard !fds.sockets.isEmpty else { continue }
                newLinks[pid] = fds.sockets
                fdCounts[pid] = fds.fdCount
                for link in fds.sockets { found.insert(link.inode) }
            case let .failure(error):
                stats.count(error)
            }
        }
        links = newLinks
        unownedAtFullScan = wanted.subtracting(found)
        details.removeAll(keepingCapacity: true)  // re-read: exec may have changed comm or exe
        lastReport = TickReport(kind: .full, linksVerified: 0, processesSearched: stats.processesScanned, newInodes: wanted.count)
        return finish(fdCounts: fdCounts, stats: stats)
    }

    func incremental(wanted: Set<UInt64>, records: [SocketRecord]) -> Attribution {
        var stats = ScanStatistics()
        var report = TickReport(kind: .incremental)
        var newLinks = [Int32: [(fd: Int32, inode: UInt64)]]()
        var fdCounts = [Int32: Int]()
        var found = Set<UInt64>()
        for (pid, known) in links {
            let relevant = known.filter { wanted.contains($0.inode) }
            guard !relevant.isEmpty else { continue }
            do {
                let verified = try scanner.verify(pid: pid, links: relevant)
                report.linksVerified += relevant.count
                guard !verified.alive.isEmpty else { continue }
                newLinks[pid] = verified.alive
                fdCounts[pid] = verified.fdCount
                for link in verified.alive { found.insert(link.inode) }
            } catch {
                stats.count(error)
            }
        }
        unownedAtFullScan.formIntersection(wanted)
        var missing = wanted.subtracting(found).subtracting(unownedAtFullScan)
        report.newInodes = missing.count
        if !missing.isEmpty {
            var searched = Set<Int32>()
            func search(_ pid: Int32) {
                guard searched.insert(pid).inserted else { return }
                stats.processesScanned += 1
                do {
                    let skip = Set((newLinks[pid] ?? []).map(\.fd))
                    let fds = try scanner.scan(pid: pid, wanted: missing, skip: skip)
                    stats.fdsRead += fds.fdCount
                    guard !fds.sockets.isEmpty else { return }
                    newLinks[pid, default: []].append(contentsOf: fds.sockets)
                    fdCounts[pid] = fds.fdCount
                    for link in fds.sockets { missing.remove(link.inode) }
                } catch {
                    stats.count(error)
                }
            }
            // 1. Processes already holding sampled sockets, the biggest first.
            for pid in newLinks.keys.sorted(by: { newLinks[$0]!.count > newLinks[$1]!.count }) where !missing.isEmpty {
                search(pid)
            }
            if !missing.isEmpty {
                // 2. Processes of the uid that created the sockets, 3. everyone else.
                let uids = Set(records.lazy.filter { missing.contains($0.inode) }.map(\.uid))
                let all = (try? scanner.proc.pids()) ?? []
                var others = [Int32]()
                for pid in all where !searched.contains(pid) {
                    guard !missing.isEmpty else { break }
                    if let uid = scanner.uid(pid: pid), uids.contains(uid) { search(pid) } else { others.append(pid) }
                }
                for pid in others where !missing.isEmpty { search(pid) }
                // Searched everywhere and still no owner: do not search again until the next full walk.
                if searched.count >= all.count { unownedAtFullScan.formUnion(missing) }
            }
            report.processesSearched = searched.count
        }
        links = newLinks
        lastReport = report
        return finish(fdCounts: fdCounts, stats: stats)
    }

    /// Joins links into inode -> owners and reads (or reuses) each owner's details.
    func finish(fdCounts: [Int32: Int], stats: ScanStatistics) -> Attribution {
        var result = Attribution()
        result.statistics = stats
        var kept = [Int32: ProcessDetails]()
        for (pid, pidLinks) in links {
            var info: ProcessDetails
            if let cached = details[pid] {
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
            var seen = Set<UInt64>()
            for link in pidLinks where seen.insert(link.inode).inserted {
                result.owners[link.inode, default: []].append(pid)
            }
        }
        details = kept
        result.details = kept
        return result
    }
}
