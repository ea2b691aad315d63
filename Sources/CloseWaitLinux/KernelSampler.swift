import CloseWaitCore
import Glibc

/// KernelSampler lists the TCP sockets in the wanted states, from netlink sock_diag or from
/// /proc/net/tcp{,6}. With `.auto` a netlink failure falls back to /proc and says why.
public struct KernelSampler {
    public var choice: SourceChoice
    public var proc: ProcFS
    public var netlink = NetlinkSockDiag()
    /// Other network namespaces to sample through a member's /proc/<pid>/net/tcp{,6}; nil:
    /// only our own (`daemon.namespaces = "own"`).
    public var namespaces: NetNamespaces?

    public init(choice: SourceChoice = .auto, proc: ProcFS = ProcFS()) {
        self.choice = choice
        self.proc = proc
    }

    public struct Sample: Sendable {
        public var records: [SocketRecord]
        /// Socket inode -> network namespace, for sockets of namespaces other than ours.
        public var foreign: [UInt64: UInt64] = [:]
        /// What this tick could and could not read of the other network namespaces.
        public var coverage = NamespaceCoverage()
        public var source: SocketSource
        /// Set when `.auto` fell back to /proc: the netlink error.
        public var fallbackReason: String?
    }

    /// Per foreign namespace: its TCP counters at the last read of its table (nil when
    /// unreadable), the records read then, when it was last taken care of (`at`: read or
    /// found unchanged; the round robin's order), whether that read was cut short, and when
    /// its table was last actually read (`readAt`: the forced re-reads count from it).
    var foreignCache:
        [UInt64: (counters: [UInt8]?, records: [SocketRecord], at: Double, cut: String?, readAt: Double)] = [:]
    /// Namespaces with no task left, and their last CLOSE_WAIT records still held by someone.
    var orphans: [UInt64: [SocketRecord]] = [:]

    /// Drops the orphaned namespaces' records that no process holds any more (`held`: the
    /// inodes this tick's attribution found an owner for).
    public mutating func pruneOrphans(held: (UInt64) -> Bool) {
        for (ns, records) in orphans {
            let kept = records.filter { held($0.inode) }
            orphans[ns] = kept.isEmpty ? nil : kept
        }
    }

    /// A namespace whose table was cut short is read again at most this often.
    public var cutRecheck = 30.0
    /// A namespace's table is read again at least this often, counters or not (0: every
    /// tick, as for a namespace with traffic; the bench's "busy" row).
    public var foreignRecheck = 60.0
    /// Wall time one tick may spend reading other namespaces' tables. Another user can make
    /// namespaces for free, and each read walks the kernel's whole TCP hash (~4 ms here): past
    /// the budget the rest keep their last table (stale) and are read first next tick, so a
    /// thousand busy namespaces cost a tick this much, not a minute.
    public var foreignBudget = 2.0
    /// Bytes of one namespace's tcp + tcp6 text read at most per tick (32 MiB is ~220k
    /// sockets); past it the namespace is reported as cut, with what was read so far.
    public var foreignByteLimit = 32 << 20

    public mutating func sample(states: Set<TCPState>, now: Double = 0) throws -> Sample {
        var sample = try sampleOwn(states: states)
        guard let namespaces else { return sample }
        let current = namespaces.current(now: now)
        for (ns, name) in namespaces.memberless {
            sample.coverage.memberless.append("\(namespaces.namedRoot)/\(name) (net:[\(ns)])")
        }
        sample.coverage.memberless.sort()
        // A namespace whose last task left lives on while sockets hold it (a process leaked
        // there and moved to another namespace): it has no /proc path any more, so its last
        // CLOSE_WAIT records stand in for as long as some process still holds them
        // (`pruneOrphans`), said as orphaned. Sockets that entered CLOSE_WAIT there since are
        // not seen (the eBPF scanner sees them).
        for (ns, cached) in foreignCache where current[ns] == nil {
            let held = cached.records.filter { $0.inode != 0 }
            if !held.isEmpty { orphans[ns] = held }
        }
        for ns in current.keys { orphans[ns] = nil }
        foreignCache = foreignCache.filter { current[$0.key] != nil }
        for (ns, records) in orphans {
            sample.coverage.orphaned[ns] = records.count
            for record in records { sample.foreign[record.inode] = ns }
            sample.records += records
        }
        let deadline = monotonicNow() + foreignBudget
        // Never read first, then the longest unread: a round robin over ticks.
        let order = current.keys.sorted {
            (foreignCache[$0]?.at ?? -.infinity, $0) < (foreignCache[$1]?.at ?? -.infinity, $1)
        }
        sample.coverage.namespaces = order.count
        for ns in order {
            guard let member = current[ns] else { continue }
            let records: [SocketRecord]
            if monotonicNow() >= deadline {
                // Past the budget: the last table stands in, or none was ever read.
                guard let cached = foreignCache[ns] else {
                    sample.coverage.unread += 1
                    continue
                }
                records = cached.records
                sample.coverage.stale += 1
                if let cut = cached.cut { sample.coverage.cut[ns] = cut }
            } else {
                do {
                    records = try readForeign(
                        ns, member: member, states: states, now: now, deadline: deadline, coverage: &sample.coverage)
                } catch let error as Errno where error.code == ENOENT || error.code == ESRCH {
                    // The member left between discovery and this read: a new one is found
                    // next tick (or the namespace went with it); its last table stands in.
                    guard let cached = foreignCache[ns] else { continue }
                    records = cached.records
                    sample.coverage.stale += 1
                } catch {
                    // Unreadable or unparsable: said, never dropped in silence; the last
                    // table stands in until it reads again.
                    sample.coverage.failed[ns] = "\(error)"
                    guard let cached = foreignCache[ns] else { continue }
                    records = cached.records
                }
            }
            for record in records where record.inode != 0 { sample.foreign[record.inode] = ns }
            sample.records += records
        }
        return sample
    }

    /// One foreign namespace's records: its last table when its TCP counters have not moved
    /// (one small read instead of two walks of the kernel's socket hash), else its table read
    /// through the member, streamed, within the byte limit and the tick's deadline.
    mutating func readForeign(
        _ ns: UInt64, member: String, states: Set<TCPState>, now: Double, deadline: Double,
        coverage: inout NamespaceCoverage
    ) throws -> [SocketRecord] {
        let memberProc = ProcFS(root: proc.root + "/" + member)
        let counters =
            states == [.closeWait] && now > 0
            ? (try? memberProc.read("net/snmp", limit: 1 << 16)).flatMap(ProcNetSnmp.tcpCounters) : nil
        if let counters, let cached = foreignCache[ns], cached.counters == counters, cached.cut == nil,
            now - cached.readAt < foreignRecheck
        {
            coverage.unchanged += 1
            foreignCache[ns]?.at = now
            return cached.records
        }
        // A table too large to read whole (someone filled the namespace) costs up to the byte
        // limit a read: it is read again at most every `cutRecheck`, its last part standing in.
        if let cached = foreignCache[ns], let cut = cached.cut, now - cached.readAt < cutRecheck {
            coverage.stale += 1
            coverage.cut[ns] = cut
            foreignCache[ns]?.at = now
            return cached.records
        }
        let (records, cut) = try sampleProcBounded(
            states, proc: memberProc, limit: foreignByteLimit, deadline: deadline)
        if let cut { coverage.cut[ns] = cut }
        coverage.read += 1
        foreignCache[ns] = (cut == nil ? counters : nil, records, now, cut, now)
        return records
    }

    mutating func sampleOwn(states: Set<TCPState>) throws -> Sample {
        switch choice {
        case .netlink:
            return Sample(records: try sampleNetlink(states), source: .netlink)
        case .proc:
            return Sample(records: try sampleProc(states), source: .proc)
        case .auto:
            do {
                return Sample(records: try sampleNetlink(states), source: .netlink)
            } catch {
                return Sample(records: try sampleProc(states), source: .proc, fallbackReason: "\(error)")
            }
        }
    }

    /// Whether to ask for both families in one TCPDIAG_GETSOCK dump (one walk of the kernel's
    /// socket table instead of two); cleared for good if the kernel refuses it.
    public var combinedDump = true

    /// - Parameter keep: only the records it accepts are kept (see `NetlinkSockDiag.dump`).
    mutating func sampleNetlink(_ states: Set<TCPState>, keep: ((SocketRecord) -> Bool)? = nil) throws
        -> [SocketRecord]
    {
        if combinedDump {
            do {
                return try netlink.dump(family: nil, states: states, keep: keep)
            } catch InetDiagError.kernel(_, _) {
                combinedDump = false  // not supported here: per family from now on
            } catch let error as Errno where error.code == EINVAL || error.code == EOPNOTSUPP {
                combinedDump = false
            }
        }
        return try samplePerFamily(states, keep: keep)
    }

    /// One SOCK_DIAG_BY_FAMILY dump per family; with `peers`, only sockets whose remote end is
    /// one of them (the kernel filters: `EvidenceGatherer`).
    public mutating func samplePerFamily(
        _ states: Set<TCPState>, peers: [Endpoint]? = nil, keep: ((SocketRecord) -> Bool)? = nil
    ) throws -> [SocketRecord] {
        var records = try netlink.dump(family: .inet, states: states, peers: peers, keep: keep)
        do {
            records += try netlink.dump(family: .inet6, states: states, peers: peers, keep: keep)
        } catch let error as Errno where error.code == EAFNOSUPPORT || error.code == ENOENT {
            // A kernel without IPv6 has no inet6 sockets to report.
        } catch let InetDiagError.kernel(errno, _) where errno == ENOENT || errno == EAFNOSUPPORT {
            // Same, reported by the kernel inside the dump.
        }
        return records
    }

    func sampleProc(_ states: Set<TCPState>, proc: ProcFS? = nil) throws -> [SocketRecord] {
        try sampleProcBounded(states, proc: proc ?? self.proc, limit: .max, deadline: nil).records
    }

    /// /proc/net/tcp{,6} of `proc`, streamed in chunks (only the wanted states are kept),
    /// at most `limit` bytes in all and until `deadline`; `cut` says why a table was not read
    /// to its end.
    public func sampleProcBounded(_ states: Set<TCPState>, proc: ProcFS, limit: Int, deadline: Double?) throws -> (
        records: [SocketRecord], cut: String?
    ) {
        var records = [SocketRecord]()
        var used = 0
        for (file, family) in [("net/tcp", AddressFamily.inet), ("net/tcp6", .inet6)] {
            var stream = ProcNetTCP.Stream(family: family, states: states)
            let read: (bytes: Int, end: ProcFS.ChunkedEnd)
            do {
                read = try proc.readChunks(file, limit: max(0, limit - used), deadline: deadline) { chunk in
                    do throws(ProcNetTCPError) { try stream.feed(chunk) } catch {
                        throw SamplerError.procParse(path: proc.root + "/" + file, error: error)
                    }
                }
            } catch let error as Errno where family == .inet6 && error.code == ENOENT {
                continue  // no IPv6 in this kernel
            }
            used += read.bytes
            switch read.end {
            case .complete:
                do throws(ProcNetTCPError) { records += try stream.finish() } catch {
                    throw SamplerError.procParse(path: proc.root + "/" + file, error: error)
                }
            case .byteLimit:
                records += stream.records
                let size = limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit >> 10) KiB"
                return (records, "\(file) larger than the \(size) read per tick; sockets past that were not seen")
            case .deadline:
                records += stream.records
                return (
                    records,
                    "\(file) not read to its end within the tick's \(TimeSpan.format(foreignBudget)) budget for namespaces"
                )
            }
        }
        return (records, nil)
    }
}

/// SamplerError names the /proc file that could not be parsed.
public enum SamplerError: Error, CustomStringConvertible {
    case procParse(path: String, error: ProcNetTCPError)

    public var description: String {
        switch self {
        case let .procParse(path, error): "\(path): \(error)"
        }
    }
}
