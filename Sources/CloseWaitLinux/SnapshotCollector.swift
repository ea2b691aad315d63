import CloseWaitCore
import Glibc

/// SnapshotCollector takes one full sample: the kernel's sockets, their owners and the details
/// of each owner — with the eBPF scanner (one iterator pass, skipped while nothing changed)
/// or by polling (the kernel's socket tables, then the owner index over /proc/*/fd).
public struct SnapshotCollector {
    public var sampler: KernelSampler
    /// Finds owners; with `fullScanInterval` 0 (the default) every collect walks every fd.
    public let owners: OwnerIndex

    /// The /proc reader the owner index uses (settings such as the fd-count method and
    /// whether cmdline is read live here); a change is handed to the index.
    public var fdTables: ProcFdTableSource {
        didSet { owners.source = fdTables }
    }

    /// Names the snapshot's containers from the runtimes' state (`[containers]`).
    public var containerNamer: ContainerNamer

    public init(source: SourceChoice = .auto, procRoot: String = "/proc", fullScanInterval: Double = 0) {
        let proc = ProcFS(root: procRoot)
        containerNamer = ContainerNamer(proc: proc)
        sampler = KernelSampler(choice: source, proc: proc)
        fdTables = ProcFdTableSource(proc: proc)
        owners = OwnerIndex(source: fdTables, fullScanInterval: fullScanInterval)
    }

    /// Which scanner runs, and why not eBPF (`selectScanner`).
    public private(set) var scanner = ScannerStatus(active: .poll, choice: .poll)
    var ebpf: EBPFScanner?
    var schedule = PassSchedule(auditInterval: 300)
    var lastPass: KernelPass?
    /// Sockets the own namespace's table listed and the last pass did not see, by key.
    var unseenBefore = Set<KernelPass.TableKey>()
    /// The last join, reused on a tick that reuses its pass with the same holders (only their
    /// fd counts are new), with the holders' identities and whether it kept the sockets.
    var lastJoin: (snapshot: Snapshot, identities: [Int32: ProcessIdentity], keepSockets: Bool)?
    var holderDetails = HolderDetails()
    /// Consecutive failed passes; at `maxPassFailures` the scanner is given up for polling.
    var passFailures = 0
    public static let maxPassFailures = 3
    /// Only the daemon's own network namespace (`daemon.namespaces = "own"`).
    public var onlyOwnNamespace = false

    /// Chooses the scanner (at start and on reload). `auto` loads eBPF where it can and
    /// otherwise polls, with the reason in `scanner`; `ebpf` throws when it cannot load.
    public mutating func selectScanner(_ choice: ScannerChoice, states: Set<TCPState>) throws(EBPFScanner.Unavailable) {
        if choice == scanner.choice, ebpf != nil || choice == .poll || scanner.reason != nil { return }
        forgetEBPF()
        guard choice != .poll else {
            scanner = ScannerStatus(active: .poll, choice: .poll)
            return
        }
        do {
            let opened = try EBPFScanner.open(states: states)
            ebpf = opened
            scanner = ScannerStatus(active: .ebpf, choice: choice, attach: opened.attach)
        } catch {
            // Polls meanwhile either way: `ebpf` asked for is the caller's to refuse.
            scanner = ScannerStatus(active: .poll, choice: choice, reason: error.description)
            if choice == .ebpf { throw error }
        }
    }

    /// Unloads the programs (the fds close with the scanner) and forgets everything the passes
    /// left: the next eBPF scanner starts from a first pass.
    mutating func forgetEBPF() {
        ebpf = nil
        lastPass = nil
        lastJoin = nil
        unseenBefore = []
        schedule.reset()
        holderDetails.reset()
        passFailures = 0
    }

    /// Seconds between the eBPF scanner's audit passes (`daemon.full_scan_interval`).
    public var auditInterval: Double {
        get { schedule.auditInterval }
        set { schedule.auditInterval = newValue }
    }

    public struct Result: Sendable {
        public var snapshot: Snapshot
        public var fallbackReason: String?
        /// The scanner this tick used (it may have fallen back to polling this tick).
        public var scanner = ScannerStatus(active: .poll, choice: .poll)
        /// Why the eBPF scanner ran a pass this tick; nil when it reused the last one (or polled).
        public var pass: PassSchedule.Reason?
        /// What went wrong with the eBPF scanner this tick, said (a failed pass, given up).
        public var scannerProblem: String?
        /// Socket inode -> monotonic seconds it entered CLOSE_WAIT, as the kernel saw it (eBPF).
        public var enteredAt: [UInt64: Double] = [:]
        /// The kernel's counters: entry times not kept (full map), accept queues not walked whole.
        public var entryTimesLost: UInt64 = 0
        public var backlogsCut: UInt64 = 0
        /// What was and was not read of the other network namespaces.
        public var coverage = NamespaceCoverage()
        /// Seconds each phase took: the kernel's tables, the owner search, the join.
        public var phases = (sample: 0.0, attribute: 0.0, join: 0.0)
        /// The sampled sockets and their owners, with `keepAttribution` (the benchmark checks
        /// them against its workload's manifest).
        public var attribution: (records: [SocketRecord], owners: OwnerMap)?
        /// How the snapshot's containers were named.
        public var containerNames = ContainerNamer.Report()
    }

    /// Processes tracked at most (`daemon.max_processes`).
    public var maxProcesses = Snapshot.defaultMaxProcesses {
        didSet { lastJoin = nil }
    }

    /// One sample: the kernel's sockets in `states`, joined with their owners.
    /// - Parameter now: monotonic seconds, for the owner index's full-walk schedule.
    /// - Parameter keepSockets: false for the per-process view only (the daemon).

    public mutating func collect(
        states: Set<TCPState>, now: Double = monotonicNow(), keepSockets: Bool = true,
        keepAttribution: Bool = false
    ) throws -> Result {
        var result = try collectSockets(
            states: states, now: now, keepSockets: keepSockets, keepAttribution: keepAttribution)
        result.containerNames = containerNamer.name(&result.snapshot.processes, now: now)
        return result
    }

    mutating func collectSockets(
        states: Set<TCPState>, now: Double, keepSockets: Bool, keepAttribution: Bool
    ) throws -> Result {
        var problem: String?
        if let ebpf {
            do {
                return try collectEBPF(
                    ebpf, states: states, now: now, keepSockets: keepSockets, keepAttribution: keepAttribution)
            } catch {
                // A pass that fails (the program went away, memory) polls this tick; a few in a
                // row give eBPF up for polling, said.
                passFailures += 1
                schedule.invalidate()
                problem = "the eBPF pass failed (\(error)); polled this tick"
                if passFailures >= Self.maxPassFailures {
                    let failures = passFailures
                    forgetEBPF()
                    scanner = ScannerStatus(
                        active: .poll, choice: scanner.choice,
                        reason: "the iterator pass failed \(failures) times in a row (last: \(error))")
                    problem = "eBPF given up for polling: \(scanner.reason ?? "")"
                }
            }
        }
        var result = try collectPolling(
            states: states, now: now, keepSockets: keepSockets, keepAttribution: keepAttribution)
        result.scanner = scanner
        if ebpf != nil { result.scanner.active = .poll }
        result.scannerProblem = problem
        return result
    }

    mutating func collectPolling(
        states: Set<TCPState>, now: Double, keepSockets: Bool, keepAttribution: Bool
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

    /// One eBPF tick: the last pass while the kernel's counters say no socket entered or left
    /// CLOSE_WAIT and no holder went away; otherwise (and every `auditInterval`) a new pass.
    /// Each holder's fd count is read every tick.
    mutating func collectEBPF(
        _ ebpf: EBPFScanner, states: Set<TCPState>, now: Double, keepSockets: Bool, keepAttribution: Bool
    ) throws -> Result {
        let started = monotonicNow()
        var reason = schedule.due(now: now, generation: ebpf.generation)
        func runPass(_ why: PassSchedule.Reason) throws {
            // The last pass is not kept while the next one is built (two at once at 50k sockets).
            lastPass = nil
            lastJoin = nil
            let generation = ebpf.generation
            // The pass, then the own namespace's table (one netlink dump, both families in one
            // walk), keeping as it is read only what the pass lacks: a socket no file leads to
            // (in flight in a unix socket's queue), or one that changed state in between. When
            // the counters say nothing changed meanwhile, every such socket is real; otherwise
            // only those the previous pass lacked too (a socket entering mid-pass is no ghost).
            var pass = try ebpf.pass(onlyOwn: onlyOwnNamespace)
            let owners = pass.owners
            let table = try sampler.sampleNetlink(states) { $0.inode == 0 || !owners.contains($0.inode) }
            let unseen = pass.unseen(in: table)
            let keys = Set(unseen.map(KernelPass.TableKey.init))
            pass.addUnowned(
                ebpf.generation == generation
                    ? unseen : unseen.filter { unseenBefore.contains(KernelPass.TableKey($0)) })
            unseenBefore = keys
            lastPass = pass
            schedule.passed(now: now, generation: generation)
            reason = why
        }
        if let why = reason { try runPass(why) }
        guard var pass = lastPass else { throw Errno(ENODATA, call: "the eBPF iterator pass") }
        let sampled = monotonicNow()
        var refreshed = holderDetails.refresh(pass.holders, source: fdTables, reread: reason == .audit)
        if refreshed.holderGone && reason == nil {
            // A holder exited or its pid was reused since the last pass: pass again (once).
            try runPass(.holderGone)
            pass = lastPass ?? pass
            refreshed = holderDetails.refresh(pass.holders, source: fdTables)
        }
        passFailures = 0
        let attributed = monotonicNow()
        let identities = refreshed.details.mapValues(\.identity)
        var snapshot: Snapshot
        if reason == nil, let last = lastJoin, last.identities == identities, last.keepSockets == keepSockets {
            // The same sockets and holders as the last join: only the fd counts are new.
            snapshot = last.snapshot
            for index in snapshot.processes.indices {
                let pid = snapshot.processes[index].details.pid
                guard let fresh = refreshed.details[pid] else { continue }
                snapshot.processes[index].details.fdOpen = fresh.fdOpen
            }
            snapshot.statistics = refreshed.statistics
        } else {
            snapshot = Snapshot.join(
                records: pass.records, owners: pass.owners, details: refreshed.details,
                statistics: refreshed.statistics, source: .ebpf, states: states, keepSockets: keepSockets,
                foreign: pass.foreign, maxProcesses: maxProcesses)
        }
        lastJoin = (snapshot, identities, keepSockets)
        var coverage = NamespaceCoverage()
        coverage.namespaces = pass.foreignNamespaces
        coverage.read = coverage.namespaces
        var result = Result(snapshot: snapshot, coverage: coverage)
        result.scanner = scanner
        result.pass = reason
        result.enteredAt = pass.enteredAt
        let counters = ebpf.counters
        result.entryTimesLost = counters.sinceFull
        result.backlogsCut = counters.backlogCut
        if pass.malformed > 0 { result.scannerProblem = "\(pass.malformed) malformed iterator records skipped" }
        result.phases = (sampled - started, attributed - sampled, monotonicNow() - attributed)
        if keepAttribution { result.attribution = (pass.records, pass.owners) }
        return result
    }
}
