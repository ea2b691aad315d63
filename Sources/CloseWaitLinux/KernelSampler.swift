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
        /// Foreign namespaces that could not be read, and why.
        public var namespaceErrors: [UInt64: String] = [:]
        /// Foreign namespaces whose TCP counters had not moved: their last table was reused.
        public var namespacesUnchanged = 0
        /// Named network namespaces with no process in them: not sampled (see NetNamespaces).
        public var unreadableNamespaces: [String] = []
        public var source: SocketSource
        /// Set when `.auto` fell back to /proc: the netlink error.
        public var fallbackReason: String?
    }

    /// Per foreign namespace: its TCP counters at the last read of its table, the CLOSE_WAIT
    /// records read then, and when (see ProcNetSnmp).
    var foreignCache: [UInt64: (counters: [UInt8], records: [SocketRecord], at: Double)] = [:]
    /// A namespace's table is read again at least this often, counters or not (0: every
    /// tick, as for a namespace with traffic; the bench's "busy" row).
    public var foreignRecheck = 60.0

    public mutating func sample(states: Set<TCPState>, now: Double = 0) throws -> Sample {
        var sample = try sampleOwn(states: states)
        guard let namespaces else { return sample }
        let current = namespaces.current(now: now)
        for (ns, name) in namespaces.memberless {
            sample.unreadableNamespaces.append("\(namespaces.namedRoot)/\(name) (net:[\(ns)])")
        }
        sample.unreadableNamespaces.sort()
        foreignCache = foreignCache.filter { current[$0.key] != nil }
        for (ns, member) in current.sorted(by: { $0.key < $1.key }) {
            do {
                let memberProc = ProcFS(root: proc.root + "/" + String(member))
                // An idle namespace (TCP counters unchanged) keeps its last CLOSE_WAIT set: one
                // small read instead of two walks of the kernel's socket hash.
                let counters = states == [.closeWait] && now > 0 ? (try? memberProc.read("net/snmp", limit: 1 << 16)).flatMap(ProcNetSnmp.tcpCounters) : nil
                let records: [SocketRecord]
                if let counters, let cached = foreignCache[ns], cached.counters == counters, now - cached.at < foreignRecheck {
                    records = cached.records
                    sample.namespacesUnchanged += 1
                } else {
                    records = try sampleProc(states, proc: memberProc)
                    if let counters { foreignCache[ns] = (counters, records, now) }
                }
                for record in records where record.inode != 0 { sample.foreign[record.inode] = ns }
                sample.records += records
            } catch {
                // The member left between discovery and this read: found again next tick.
                sample.namespaceErrors[ns] = "\(error)"
            }
        }
        return sample
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

    mutating func sampleNetlink(_ states: Set<TCPState>) throws -> [SocketRecord] {
        if combinedDump {
            do {
                return try netlink.dump(family: nil, states: states)
            } catch InetDiagError.kernel(_, _) {
                combinedDump = false  // not supported here: per family from now on
            } catch let error as Errno where error.code == EINVAL || error.code == EOPNOTSUPP {
                combinedDump = false
            }
        }
        return try samplePerFamily(states)
    }

    /// One SOCK_DIAG_BY_FAMILY dump per family; with `peers`, only sockets whose remote end is
    /// one of them (the kernel filters: `EvidenceGatherer`).
    public mutating func samplePerFamily(_ states: Set<TCPState>, peers: [Endpoint]? = nil) throws -> [SocketRecord] {
        var records = try netlink.dump(family: .inet, states: states, peers: peers)
        do {
            records += try netlink.dump(family: .inet6, states: states, peers: peers)
        } catch let error as Errno where error.code == EAFNOSUPPORT || error.code == ENOENT {
            // A kernel without IPv6 has no inet6 sockets to report.
        } catch let InetDiagError.kernel(errno, _) where errno == ENOENT || errno == EAFNOSUPPORT {
            // Same, reported by the kernel inside the dump.
        }
        return records
    }

    func sampleProc(_ states: Set<TCPState>, proc: ProcFS? = nil) throws -> [SocketRecord] {
        let proc = proc ?? self.proc
        var records = [SocketRecord]()
        for (file, family) in [("net/tcp", AddressFamily.inet), ("net/tcp6", .inet6)] {
            let text: String
            switch Result(catching: { () throws(Errno) -> String in try proc.readText(file) }) {
            case let .success(content): text = content
            case let .failure(error):
                if family == .inet6 && error.code == ENOENT { continue } // no IPv6 in this kernel
                throw error
            }
            do {
                records += try ProcNetTCP.parse(text, family: family, states: states)
            } catch {
                throw SamplerError.procParse(path: proc.root + "/" + file, error: error)
            }
        }
        return records
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
