import CloseWaitCore
import CloseWaitLinux

/// TickResult is everything one tick found and decided, computed once; every output (journal,
/// STATUS, state file, metrics page and textfile) renders from it and derives nothing again.
public struct TickResult: Sendable {
    /// Per-process statuses in report order (most CLOSE_WAIT first, then by pid).
    public var statuses: [ProcessStatus]
    /// Alerts to send, each alert of a process with its diagnosis.
    public var events: [AlertEvent]
    /// Alerts firing after this tick, by process (nil: host-wide).
    public var firing: [(ProcessIdentity?, AlertReason, AlertLevel)]
    /// Processes with an alert firing (a host-wide alert is not a process).
    public var alertingProcesses: Int
    public var total: Int
    /// The current diagnosis of every alerting process looked at.
    public var diagnoses: [ProcessIdentity: (Diagnosis, Evidence)]
    public var health: TickHealth
    public var phases: TickPhases
    /// Why netlink is not used, when the sampler fell back to /proc/net/tcp.
    public var fallbackReason: String?
    /// The owner index walked every fd table this tick (a full walk).
    public var fullWalk: Bool
    /// What the owner search read this tick.
    public var scan: ScanStatistics
    /// The sampled sockets and their owners, with `TickPipeline.keepAttribution` (the bench).
    public var attribution: (records: [SocketRecord], owners: OwnerMap)?
    /// Which scanner this tick used, and why not eBPF.
    public var scanner: ScannerStatus
    /// Why the eBPF scanner passed this tick (nil: it reused the last pass, or polled).
    public var pass: PassSchedule.Reason?
}

/// TickHealth is what a tick could not see or finish, counted; `notes` says each in a
/// sentence (STATUS, the state file's warnings, `closewaitd status`).
public struct TickHealth: Sendable {
    public var attribution: AttributionHealth
    /// Which other network namespaces were read, cut, behind or failed (and why).
    public var coverage: NamespaceCoverage
    /// CLOSE_WAIT sockets no process holds, as the snapshot counts them.
    public var unowned: Int
    /// Of those, held by no process once the sockets still being searched are left out.
    public var unownedHeld: Int
    public var notYetSearched: Int
    /// Processes holding CLOSE_WAIT sockets past `daemon.max_processes`.
    public var untracked: Int
    public var notes: [String]
}

/// Seconds each phase of a tick took.
public struct TickPhases: Sendable {
    public var sample = 0.0, attribute = 0.0, join = 0.0, track = 0.0, decide = 0.0, diagnose = 0.0
    public var total: Double { sample + attribute + join + track + decide + diagnose }
}

/// TickPipeline is one tick of the daemon, the same for `closewaitd run` and the benchmark:
/// sample the kernel (every namespace), attribute to processes, join, track, decide alerts and
/// diagnose the alerting processes within the tick's budget. It owns all state that lives from
/// tick to tick; `configure` applies settings, at start and on every reload.
public struct TickPipeline {
    public private(set) var collector: SnapshotCollector
    public private(set) var tracker: Tracker
    public private(set) var policy: AlertPolicy
    public private(set) var schedule = DiagnosisSchedule()
    public private(set) var settings: Settings
    /// The interval ticks run at (the watchdog may shorten the configured one).
    public private(set) var tickInterval: Double
    let procRoot: String
    var gatherer: EvidenceGatherer
    /// Keep the sampled sockets and owners in the result (the benchmark's correctness check).
    public var keepAttribution = false
    /// Per process: the sockets that left CLOSE_WAIT while it still holds their fds (reset by
    /// the kernel), those that left and were not looked for yet, and when it was last checked.
    struct ResetWatch {
        var held: Set<UInt64> = []
        var unchecked: Set<UInt64> = []
        var checked = -Double.infinity
    }
    var resets: [ProcessIdentity: ResetWatch] = [:]
    /// Looks at alerting processes that failed this tick, and the last error.
    var lookFailures = (count: 0, last: "")
    /// Processes whose departed sockets are looked for per tick (one fd-table scan each).
    public static let resetChecksPerTick = 8
    /// Monotonic seconds now: the diagnosis time budget and the phase timings.
    let clock: @Sendable () -> Double
    /// Why `daemon.scanner = "ebpf"` cannot run (the daemon refuses to start; a reload polls).
    public private(set) var scannerError: String?

    /// - Parameter prepare: adjusts the collector before the first tick (the benchmark's fd-count
    ///   method and forced namespace re-reads); the daemon needs none.
    public init(
        settings: Settings, tickInterval: Double, procRoot: String = "/proc",
        clock: @escaping @Sendable () -> Double = monotonicNow,
        prepare: (inout SnapshotCollector) -> Void = { _ in }
    ) {
        self.procRoot = procRoot
        self.clock = clock
        self.settings = settings
        self.tickInterval = tickInterval
        collector = SnapshotCollector(
            source: settings.source, procRoot: procRoot, fullScanInterval: settings.fullScanInterval)
        tracker = Tracker(window: settings.window)
        policy = AlertPolicy(settings: settings)
        gatherer = EvidenceGatherer(proc: ProcFS(root: procRoot))
        // The daemon never shows a cmdline, and reading one can block (a process in D state).
        collector.fdTables.reader.readsCmdline = false
        prepare(&collector)
        configure(settings, tickInterval: tickInterval)
    }

    /// What a tick may spend reading other namespaces: a fifth of the interval, at most 2 s
    /// (a thousand busy namespaces then cost a fifth of a core, and are read in turn).
    public static func namespaceBudget(interval: Double) -> Double { min(2, interval * 0.2) }

    /// Applies every setting the pipeline uses; history (tracker, alerts, diagnoses) is kept.
    public mutating func configure(_ new: Settings, tickInterval: Double) {
        let namespacesChanged = (collector.sampler.namespaces != nil) != (new.namespaces == .all)
        settings = new
        self.tickInterval = tickInterval
        policy.settings = new
        tracker.window = new.window
        collector.sampler.choice = new.source
        if namespacesChanged {
            collector.sampler.namespaces = new.namespaces == .all ? NetNamespaces(proc: ProcFS(root: procRoot)) : nil
        }
        collector.owners.fullScanInterval = new.fullScanInterval
        collector.auditInterval = new.fullScanInterval
        collector.onlyOwnNamespace = new.namespaces == .own
        do {
            try collector.selectScanner(new.scanner, states: [.closeWait])
            scannerError = nil
        } catch {
            scannerError = error.description
        }
        collector.maxProcesses = new.maxProcesses
        collector.containerNamer.roots = new.containers
        collector.owners.invalidate()
        collector.sampler.foreignBudget = Self.namespaceBudget(interval: tickInterval)
    }

    /// Called while a long walk advances (the daemon feeds its watchdog from it).
    public func onWalkProgress(_ progress: @escaping () -> Void) {
        collector.owners.progress = progress
    }

    /// One tick at monotonic time `now`; throws when the kernel's sockets cannot be sampled.
    public mutating func run(now: Double) throws -> TickResult {
        let collected = try collector.collect(
            states: [.closeWait], now: now, keepSockets: false, keepAttribution: keepAttribution)
        let snapshot = collected.snapshot
        var phases = TickPhases()
        (phases.sample, phases.attribute, phases.join) = collected.phases

        var started = clock()
        var statuses = tracker.update(now: now, observations: snapshot.processes, enteredAt: collected.enteredAt)
        trackResets(&statuses, now: now)
        statuses.sort(by: ProcessStatus.reportOrder)
        phases.track = clock() - started

        started = clock()
        policy.handOver(tracker.handovers)
        // Sockets whose owner search is still going on are not "held by no process" yet.
        let pendingSearch = snapshot.statistics.notYetSearched
        let unowned = max(0, snapshot.unownedHeld - pendingSearch)
        var events = policy.evaluate(now: now, statuses: statuses, total: snapshot.total, unowned: unowned)
        let firing = policy.firing
        let firingProcesses = Set(firing.compactMap(\.0))
        phases.decide = clock() - started

        started = clock()
        schedule.beginTick(firing: firingProcesses, handovers: tracker.handovers, clock: started)
        lookFailures = (0, "")
        gatherer.cache = EvidenceGatherer.TableCache()
        for index in events.indices where events[index].kind != .recovered {
            guard let process = events[index].process else { continue }
            events[index].diagnosis = diagnose(process, alert: true, now: now)
        }
        for status in schedule.refreshOrder(statuses, firing: firingProcesses) {
            _ = diagnose(status, alert: false, now: now)
        }
        gatherer.cache = nil
        phases.diagnose = clock() - started

        let attribution = AttributionHealth(snapshot)
        let notes = [
            collected.coverage.summary,
            settings.unownedWarning > 0 && unowned >= settings.unownedWarning
                ? "\(unowned) sockets held by no process" : nil,
            snapshot.untracked > 0
                ? "\(snapshot.untracked) more processes holding CLOSE_WAIT sockets not tracked (daemon.max_processes)"
                : nil,
            pendingSearch > 0
                ? "\(pendingSearch) new \(pendingSearch == 1 ? "socket's" : "sockets'") owner still being searched for"
                : nil,
            collected.scannerProblem,
            collected.containerNames.note,
            collected.scanner.reason.map { "polling: eBPF unavailable (\(Escape.line($0, limit: 160)))" },
            collected.entryTimesLost > 0
                ? "\(collected.entryTimesLost) CLOSE_WAIT entry times not kept (the kernel's map was full); their ages count from when they were first seen"
                : nil,
            collected.backlogsCut > 0
                ? "accept queues longer than the iterator walks were met \(collected.backlogsCut) times; connections past that are not seen"
                : nil,
            lookFailures.count > 0
                ? "\(lookFailures.count) diagnosis \(lookFailures.count == 1 ? "look" : "looks") failed (\(Escape.line(lookFailures.last, limit: 120)))"
                : nil,
        ]
        .compactMap { $0 }
        let health = TickHealth(
            attribution: attribution, coverage: collected.coverage, unowned: snapshot.unowned,
            unownedHeld: unowned, notYetSearched: pendingSearch, untracked: snapshot.untracked, notes: notes)
        return TickResult(
            statuses: statuses, events: events, firing: firing, alertingProcesses: firingProcesses.count,
            total: snapshot.total, diagnoses: schedule.current, health: health, phases: phases,
            fallbackReason: collected.fallbackReason,
            fullWalk: collected.scanner.active == .poll && collector.owners.lastReport.kind == .full,
            scan: snapshot.statistics, attribution: collected.attribution, scanner: collected.scanner,
            pass: collected.pass)
    }

    /// Sockets that left a process's CLOSE_WAIT set but whose fds it still holds: the kernel
    /// reset them (a keepalive probe, the peer's RST) and they dropped out of every table, yet
    /// they are leaked as surely. A process's departed sockets are looked for in its fd table
    /// (one scan, only those inodes); one with such sockets is checked again in turn, at most
    /// `resetChecksPerTick` processes a tick, until it closes them. Forgotten with the process.
    mutating func trackResets(_ statuses: inout [ProcessStatus], now: Double) {
        let present = Set(statuses.map(\.details.identity))
        resets = resets.filter { present.contains($0.key) }
        // Sockets that left wait for their look even when this tick has no room for it.
        for (identity, gone) in tracker.departed where present.contains(identity) {
            resets[identity, default: ResetWatch()].unchecked.formUnion(gone)
        }
        // Those never looked for first, then the longest unchecked.
        let due = resets.sorted {
            ($0.value.unchecked.isEmpty ? 1 : 0, $0.value.checked) < (
                $1.value.unchecked.isEmpty ? 1 : 0, $1.value.checked
            )
        }
        let pids = Dictionary(statuses.map { ($0.details.identity, $0.details.pid) }, uniquingKeysWith: { a, _ in a })
        let scanner = collector.fdTables.scanner
        for (identity, watch) in due.prefix(Self.resetChecksPerTick) {
            guard let pid = pids[identity] else { continue }
            let wanted = watch.held.union(watch.unchecked)
            // One that cannot be read (permission, exiting) waits its turn again, not first.
            guard let fds = try? scanner.scan(pid: pid, wanted: wanted) else {
                resets[identity]?.checked = now
                continue
            }
            let still = Set(fds.sockets.map(\.inode)).intersection(wanted)
            resets[identity] = still.isEmpty ? nil : ResetWatch(held: still, checked: now)
        }
        for i in statuses.indices {
            let held = resets[statuses[i].details.identity]?.held.count ?? 0
            statuses[i].heldAfterReset = held
            statuses[i].flows.resetButHeld = min(held, statuses[i].flows.left)
        }
    }

    /// Looks closer at an alerting process (its sockets to its top peers, from the kernel
    /// filtered by peer, and its own fd table) when the schedule says so, else classifies its
    /// last look again; nil when it was never looked at or the look failed (it exited,
    /// permission).
    mutating func diagnose(_ status: ProcessStatus, alert: Bool, now: Double) -> (Diagnosis, Evidence)? {
        let identity = status.details.identity
        if schedule.wantsLook(identity, alert: alert, now: now, clock: clock()) {
            do {
                let evidence = try gatherer.evidence(
                    for: status, ages: tracker.socketAges(identity, now: now), deadline: schedule.deadline)
                return schedule.record(identity, evidence: evidence, now: now)
            } catch {
                // Counted and said (STATUS, the state file's warnings): a look that cannot be
                // taken leaves the alert without its why.
                lookFailures.count += 1
                lookFailures.last = "\(error)"
            }
        }
        return schedule.reclassify(status, now: now)
    }
}
