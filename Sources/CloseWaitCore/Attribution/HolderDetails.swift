/// HolderDetails keeps, for the eBPF scanner, what a person needs to recognise each process
/// holding sampled sockets. The kernel's pass says exactly which processes hold them; this
/// reads each holder's open-fd count every tick (fd exhaustion is per tick) and its start
/// time, and reuses its details while the start time stays the same (a reused pid drops them,
/// so a new process is never shown under the old one's name).
public struct HolderDetails {
    private var cache: [Int32: ProcessDetails] = [:]

    public init() {}

    public struct Refresh: Sendable {
        public var details: [Int32: ProcessDetails] = [:]
        public var statistics = ScanStatistics()
        /// Some holder exited or its pid now names another process: the pass is out of date.
        public var holderGone = false
    }

    /// - Parameter reread: read every holder's details again (an audit: exec changes comm and
    ///   exe without changing the pid or its start time).
    public mutating func refresh(_ holders: [Int32], source: any FdTableSource, reread: Bool = false) -> Refresh {
        var out = Refresh()
        if reread { cache = [:] }
        let counts = source.fdCounts(holders)
        let cached = holders.filter { cache[$0] != nil }
        var starts = [Int32: Result<UInt64, FdTableError>]()
        for (pid, start) in zip(cached, source.startTimes(cached)) { starts[pid] = start }
        var kept = [Int32: ProcessDetails]()
        kept.reserveCapacity(holders.count)
        for (pid, counted) in zip(holders, counts) {
            out.statistics.processesScanned += 1
            var count: Int?
            switch counted {
            case .success(0?):
                // A zombie's fd directory is empty: it holds nothing any more.
                out.statistics.count(.vanished)
                out.holderGone = true
                continue
            case let .success(value): count = value
            case let .failure(error):
                out.statistics.count(error)
                if error == .vanished { out.holderGone = true }
                if error == .permissionDenied { out.statistics.unreadableUIDs.insert(source.uid(of: pid) ?? .max) }
                continue
            }
            var info = cache[pid]
            if let known = info, let start = starts[pid] {
                switch start {
                case let .success(time) where time != known.identity.startTime:
                    info = nil
                    out.holderGone = true
                case let .failure(error):
                    out.statistics.count(error)
                    if error == .vanished { out.holderGone = true }
                    continue
                default: break
                }
            }
            if info == nil {
                switch source.details(of: pid, fdOpen: 0) {
                case let .success(read): info = read
                case let .failure(error):
                    out.statistics.count(error)
                    if error == .vanished { out.holderGone = true }
                    continue
                }
            }
            guard var details = info else { continue }
            if count == nil {
                // Before Linux 6.2 a count costs a walk of the holder's fd directory.
                if case let .success(table)? = source.scan([FdScanRequest(pid: pid, wanted: [])]).first {
                    count = table.fdCount
                    out.statistics.fdsRead += table.fdCount
                }
            }
            details.fdOpen = count ?? details.fdOpen
            kept[pid] = details
        }
        cache = kept
        out.details = kept
        return out
    }

    /// Forgets every holder (the scanner changed).
    public mutating func reset() { cache = [:] }
}
