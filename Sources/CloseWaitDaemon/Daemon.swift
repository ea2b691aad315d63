import CloseWaitCore
import CloseWaitLinux
import CloseWaitSystemd
import Dispatch
@preconcurrency import Glibc
import Logging

/// DaemonOptions are the command-line choices of `closewaitd run`.
public struct DaemonOptions: Sendable {
    public var configPath: String
    public var logTarget: JournalWriter.Target
    public var procRoot: String
    /// Rewritten each tick for `closewaitd status`; nil: none.
    public var stateFile: String?
    /// A listening socket to serve GET /metrics on, and where it came from (for the journal).
    public var metricsSocket: (fd: Int32, origin: String)?

    public init(configPath: String, logTarget: JournalWriter.Target, procRoot: String,
                stateFile: String? = StateFile.defaultPath, metricsSocket: (fd: Int32, origin: String)? = nil) {
        self.configPath = configPath
        self.logTarget = logTarget
        self.procRoot = procRoot
        self.stateFile = stateFile
        self.metricsSocket = metricsSocket
    }
}

/// Daemon is the long-running loop: a DispatchSourceTimer on the main queue samples, tracks,
/// decides and alerts; signal sources stop (SIGTERM, SIGINT) and reload (SIGHUP). All state is
/// owned here, on the main actor.
@MainActor
public final class Daemon {
    let options: DaemonOptions
    var settings: Settings
    let writer: JournalWriter
    let logger: Logger
    let notifier = Notifier()
    var collector: SnapshotCollector
    var tracker: Tracker
    var policy: AlertPolicy
    var timer: DispatchSourceTimer?
    var signalSources: [DispatchSourceSignal] = []
    var ready = false
    var consecutiveFailures = 0
    var fallbackReported = false
    var stateFileFailed = false
    var reportedDrops = 0
    var health = Metrics.Health()
    var lastTick: (statuses: [ProcessStatus], total: Int) = ([], 0)
    var textfileFailed = false
    var attribution = AttributionMonitor()
    let metricsFeed = MetricsFeed()
    /// The last diagnosis of each alerting process: the kernel is looked at when an alert is
    /// sent and every `rediagnoseInterval` while it fires; in between, each tick classifies
    /// again from that look and the tracker's current count, growth and pattern. Dropped when
    /// the process stops firing.
    var diagnoses: [ProcessIdentity: (diagnosis: Diagnosis, evidence: Evidence, at: Double)] = [:]
    static let rediagnoseInterval = 600.0
    /// Looking closer costs a peer-filtered netlink dump and one fd-table scan (about 10 ms
    /// at 50k sockets): a tick does at most this many for alerts it sends, and this many more
    /// to refresh, so a host where hundreds of processes alert at once stays within its tick.
    static let diagnosesForAlertsPerTick = 20
    static let refreshesPerTick = 1
    var diagnosisBudget = (alerts: 0, refreshes: 0)
    /// Looks also stop once a tick has spent this long on them (a look into a namespace
    /// someone filled with TIME_WAIT entries reads a large table); the rest keep their last
    /// diagnosis (or `unknown`) and are looked at on a later tick.
    static let diagnosisTimePerTick = 1.0
    var diagnosisDeadline = 0.0
    var diagnosisTables = EvidenceGatherer.TableCache()
    /// Named network namespaces last reported as not sampled (said once per change).
    var unreadableNamespaces: [String] = []
    var namespaceReporter = NamespaceReporter()
    /// When the watchdog was last fed: after each good tick, and during a long full walk or
    /// search that is still advancing (`OwnerIndex.progress`).
    var lastWatchdogPing = 0.0
    var metricsServer: MetricsServer?
    public private(set) var ticks = 0

    /// Repeated sampler failures before the journal hears of it (and STATUS says why).
    static let failuresBeforeReport = 3

    public init(options: DaemonOptions, settings: Settings) {
        self.options = options
        self.settings = settings
        writer = JournalWriter(target: options.logTarget)
        let writer = writer
        var logger = Logger(label: "closewaitd") { _ in JournalLogHandler(writer: writer) }
        logger.logLevel = .info
        self.logger = logger
        collector = SnapshotCollector(source: settings.source, procRoot: options.procRoot,
                                      fullScanInterval: settings.fullScanInterval)
        collector.fdTables.reader.readsCmdline = false  // never shown by the daemon; can block (D state)
        collector.maxProcesses = settings.maxProcesses
        collector.sampler.namespaces = settings.namespaces == .all ? NetNamespaces(proc: ProcFS(root: options.procRoot)) : nil
        tracker = Tracker(window: settings.window)
        policy = AlertPolicy(settings: settings)
    }

    /// What a tick may spend reading other namespaces: a fifth of the interval, at most 2 s
    /// (a thousand busy namespaces then cost a fifth of a core, and are read in turn).
    static func namespaceBudget(interval: Double) -> Double { min(2, interval * 0.2) }

    /// No tick comes sooner than this, whatever the watchdog asks (a WATCHDOG_USEC of 1000
    /// would otherwise spin a core): the config's own minimum interval.
    public static let minimumTickInterval = 0.1

    /// The tick interval: the configured one, but at least two ticks per watchdog interval,
    /// and never below `minimumTickInterval`.
    var tickInterval: Double {
        guard let watchdog = notifier.watchdogInterval else { return settings.interval }
        return max(Self.minimumTickInterval, min(settings.interval, watchdog / 2))
    }

    public func start() {
        Memory.useOneArena()
        Memory.mapOnlyTouchedFilePages()
        for (signal, action) in [(SIGTERM, "stop"), (SIGINT, "stop"), (SIGHUP, "reload")] {
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .main)
            source.setEventHandler { [weak self] in
                MainActor.assumeIsolated {
                    if action == "stop" { self?.stop() } else { self?.reload() }
                }
            }
            source.resume()
            signalSources.append(source)
        }
        Glibc.signal(SIGPIPE, SIG_IGN)  // a closed stderr pipe is an EPIPE to ignore, not a death
        if let watchdog = notifier.watchdogInterval, watchdog / 2 < Self.minimumTickInterval {
            logger.warning("the watchdog interval (\(TimeSpan.format(watchdog))) is too short to sample within: sampling every \(TimeSpan.format(Self.minimumTickInterval)); raise WatchdogSec= to at least 1s")
        } else if let watchdog = notifier.watchdogInterval, settings.interval > watchdog / 2 {
            logger.notice("daemon.interval \(TimeSpan.format(settings.interval)) is longer than half the watchdog interval (\(TimeSpan.format(watchdog))); sampling every \(TimeSpan.format(watchdog / 2)) instead")
        }
        logger.info("closewaitd starting: interval \(TimeSpan.format(tickInterval)), config \(options.configPath), \(settings.rules.count) rules",
                    metadata: ["message_id": "\(MessageID.started)"])
        startMetricsServer()
        collector.sampler.foreignBudget = Self.namespaceBudget(interval: tickInterval)
        if notifier.watchdogInterval != nil {
            collector.owners.progress = { [weak self] in MainActor.assumeIsolated { self?.walkAdvanced() } }
        }
        scheduleTimer()
    }

    /// Serves /metrics on the socket `closewaitd run` was given, from its own thread.
    func startMetricsServer() {
        guard let (fd, origin) = options.metricsSocket else { return }
        let feed = metricsFeed
        let server = MetricsServer(listenFD: fd) { feed.page() }
        guard server.start() else {
            logger.error("cannot start the /metrics thread (TasksMax or pids.max reached?); metrics are not served")
            return
        }
        feed.server.withLock { $0 = server }
        metricsServer = server
        logger.info("serving Prometheus metrics at http://\(MetricsServer.boundDescription(fd))/metrics (\(origin))")
    }

    func scheduleTimer() {
        timer?.cancel()
        let timer = DispatchSource.makeTimerSource(queue: .main)
        let interval = tickInterval
        timer.schedule(deadline: .now(), repeating: .nanoseconds(Int(interval * 1e9)), leeway: .milliseconds(Int(min(500, interval * 100))))
        timer.setEventHandler { [weak self] in
            MainActor.assumeIsolated { self?.tick() }
        }
        timer.resume()
        self.timer = timer
    }

    func tick() {
        let now = monotonicNow()
        defer { writeMetrics(tickStarted: now) }
        let result: SnapshotCollector.Result
        do {
            result = try collector.collect(states: [.closeWait], now: now, keepSockets: false)
        } catch {
            samplerFailed(error)
            return
        }
        if consecutiveFailures >= Self.failuresBeforeReport {
            logger.notice("sampling works again after \(consecutiveFailures) failures")
        }
        consecutiveFailures = 0
        if let reason = result.fallbackReason, !fallbackReported {
            fallbackReported = true
            logger.warning("netlink sock_diag unavailable (\(reason)); reading /proc/net/tcp instead")
        }
        let snapshot = result.snapshot
        let memberless = result.coverage.memberless
        if memberless != unreadableNamespaces {
            if !memberless.isEmpty {
                logger.warning("\(memberless.count) named network namespace(s) with no process in them are not sampled (reading one needs setns, CAP_SYS_ADMIN): \(memberless.map { Escape.line($0) }.joined(separator: ", "))")
            } else if !unreadableNamespaces.isEmpty {
                logger.notice("every named network namespace has a process in it again; all are sampled")
            }
            unreadableNamespaces = memberless
        }
        if let entry = namespaceReporter.update(result.coverage, budget: collector.sampler.foreignBudget) { writer.send(entry) }
        // A full walk frees what it built; give it back rather than keep it as peak.
        if collector.owners.lastReport.kind == .full { Memory.returnFreeMemory() }
        let statuses = tracker.update(now: now, observations: snapshot.processes.map(ProcessObservation.init))
        policy.handOver(tracker.handovers)
        for move in tracker.handovers where diagnoses[move.to] == nil { diagnoses[move.to] = diagnoses[move.from] }
        // Sockets whose owner search is still going on are not "held by no process" yet.
        let pendingSearch = snapshot.statistics.notYetSearched
        let unowned = max(0, snapshot.unownedHeld - pendingSearch)
        let events = policy.evaluate(now: now, statuses: statuses, total: snapshot.total, unowned: unowned)
        let firing = Set(policy.firing.compactMap(\.0))
        diagnoses = diagnoses.filter { firing.contains($0.key) }
        diagnosisBudget = (Self.diagnosesForAlertsPerTick, Self.refreshesPerTick)
        diagnosisDeadline = monotonicNow() + Self.diagnosisTimePerTick
        diagnosisTables = EvidenceGatherer.TableCache()
        for var event in events {
            if event.kind != .recovered, let process = event.process {
                event.diagnosis = diagnose(process, now: now, force: true)
            }
            writer.send(AlertMessage.entry(event))
        }
        // Refresh the longest-unrefreshed first (never looked at: first of all), so every
        // alerting process gets its turn.
        let due = statuses.filter { firing.contains($0.details.identity) }
            .sorted { (diagnoses[$0.details.identity]?.at ?? -.infinity) < (diagnoses[$1.details.identity]?.at ?? -.infinity) }
        for status in due { _ = diagnose(status, now: now, force: false) }
        ticks += 1
        let health = AttributionHealth(snapshot)
        if let entry = attribution.update(health) { writer.send(entry) }
        let alerting = policy.alertingProcesses
        let notes = [result.coverage.summary,
                     settings.unownedWarning > 0 && unowned >= settings.unownedWarning ? "\(unowned) sockets held by no process" : nil,
                     snapshot.untracked > 0 ? "\(snapshot.untracked) more processes holding CLOSE_WAIT sockets not tracked (daemon.max_processes)" : nil,
                     pendingSearch > 0 ? "\(pendingSearch) new \(pendingSearch == 1 ? "socket's" : "sockets'") owner still being searched for" : nil]
            .compactMap { $0 }
        let status = StatusLine.render(statuses: statuses, alerting: alerting, total: snapshot.total, health: health, notes: notes)
        if !ready {
            ready = true
            notifier.ready(status: status)
        } else {
            notifier.status(status)
        }
        writeState(statuses: statuses, total: snapshot.total, status: status, health: health, warnings: notes)
        self.health.lastSuccessfulTick = wallClock()
        self.health.attribution = health
        self.health.unowned = snapshot.unowned
        self.health.namespaces = result.coverage
        self.health.notYetSearched = pendingSearch
        self.health.untracked = snapshot.untracked
        lastTick = (statuses, snapshot.total)
        if notifier.watchdogInterval != nil {
            notifier.watchdog()
            lastWatchdogPing = monotonicNow()
        }
        reportDroppedNotifications()
    }

    /// Looks closer at an alerting process (its sockets to its top peers, from the kernel
    /// filtered by peer, and its own fd table) and classifies the cause; nil when it cannot
    /// look (it exited, permission). Reuses a diagnosis younger than `rediagnoseInterval`
    /// unless forced.
    func diagnose(_ status: ProcessStatus, now: Double, force: Bool) -> (Diagnosis, Evidence)? {
        let identity = status.details.identity
        let cached = diagnoses[identity]
        // A look at the kernel is due for an alert (unless one was taken this last minute) or
        // when the last is `rediagnoseInterval` old, within the tick's budget.
        let age = cached.map { now - $0.at } ?? .infinity
        if force ? age >= 60 : age >= Self.rediagnoseInterval {
            let budgeted = (force ? diagnosisBudget.alerts > 0 : diagnosisBudget.refreshes > 0) && monotonicNow() < diagnosisDeadline
            if budgeted {
                if force { diagnosisBudget.alerts -= 1 } else { diagnosisBudget.refreshes -= 1 }
                let gatherer = EvidenceGatherer(proc: ProcFS(root: options.procRoot), cache: diagnosisTables)
                if let evidence = try? gatherer.evidence(for: status, ages: tracker.socketAges(identity, now: now), deadline: diagnosisDeadline) {
                    let diagnosis = Diagnosis.classify(evidence)
                    diagnoses[identity] = (diagnosis, evidence, now)
                    return (diagnosis, evidence)
                }
            }
        }
        // Otherwise the kernel's side of the last look (peers, queues, live connections) with
        // the tracker's side now (count, growth, pattern): pure, every tick.
        guard var evidence = cached?.evidence else { return nil }
        evidence.closeWait = status.count
        evidence.growthPerMinute = status.growthPerMinute
        evidence.pattern = status.pattern
        let diagnosis = Diagnosis.classify(evidence)
        diagnoses[identity] = (diagnosis, evidence, cached!.at)
        return (diagnosis, evidence)
    }

    /// A long walk is advancing: feed the watchdog at most every quarter of its interval, and
    /// only once READY (systemd's start timeout covers the first tick).
    func walkAdvanced() {
        guard ready, let interval = notifier.watchdogInterval else { return }
        let now = monotonicNow()
        if now - lastWatchdogPing >= interval / 4 {
            notifier.watchdog()
            lastWatchdogPing = now
        }
    }

    func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Rewrites the node_exporter textfile (if configured) from the last good tick and the
    /// daemon's health; a failure is logged once and never stops the daemon.
    func writeMetrics(tickStarted: Double) {
        health.tickDuration = monotonicNow() - tickStarted
        health.notificationsDropped = notifier.dropped
        guard metricsServer != nil || settings.metricsTextfile != nil else { return }
        let input = MetricsFeed.Input(statuses: lastTick.statuses, firing: policy.firing, total: lastTick.total,
                                      health: health, maxProcesses: settings.metricsMaxProcesses)
        // Rendered once a tick at most: for the textfile here, and the same bytes serve every
        // scrape of this tick (without a textfile, the first scrape renders).
        let page = settings.metricsTextfile.map { _ in MetricsFeed.render(input) }
        if metricsServer != nil { metricsFeed.publish(input, page: page) }
        if let path = settings.metricsTextfile, let page {
            rewrite(path, page, what: "the metrics textfile", failed: &textfileFailed)
        }
    }

    /// Writes a file the daemon keeps for others atomically; a failure is logged once, the
    /// first success after it too, and neither stops the daemon.
    func rewrite(_ path: String, _ bytes: [UInt8], what: String, failed: inout Bool) {
        do {
            try writeFileAtomically(path, bytes)
            if failed {
                failed = false
                logger.notice("\(what) \(path) written again")
            }
        } catch {
            if !failed {
                failed = true
                logger.warning("cannot write \(what) \(path): \(error)")
            }
        }
    }

    nonisolated public static let version = "0.1.0"

    /// Says once (then every 1000 drops) that systemd is not reading its notify socket.
    func reportDroppedNotifications() {
        let dropped = notifier.dropped
        guard dropped > reportedDrops else { return }
        if reportedDrops == 0 || dropped / 1000 > reportedDrops / 1000 {
            logger.warning("systemd's notify socket is full or gone: \(dropped) STATUS/WATCHDOG messages dropped so far (the loop never waits for it)")
        }
        reportedDrops = dropped
    }

    /// Rewrites the state file atomically (a temporary file renamed over it); a failure is
    /// logged once and never stops the daemon.
    func writeState(statuses: [ProcessStatus], total: Int, status: String, health: AttributionHealth, warnings: [String]) {
        guard let path = options.stateFile else { return }
        let document = StateDocument(statuses: statuses, firing: policy.firing, total: total, status: status,
                                     daemonPID: getpid(), ticks: ticks, wallTime: wallClock(), interval: tickInterval,
                                     attribution: health, diagnoses: diagnoses.mapValues { ($0.diagnosis, $0.evidence) },
                                     warnings: warnings).json()
        rewrite(path, document.renderedBytes(pretty: true) + [0x0a], what: "the state file for `closewaitd status`",
                failed: &stateFileFailed)
    }

    func samplerFailed(_ error: any Error) {
        consecutiveFailures += 1
        health.samplerFailures += 1
        let text = "\(error)"
        if consecutiveFailures >= Self.failuresBeforeReport {
            notifier.status("Sampling failed \(consecutiveFailures) times in a row: \(text)")
            // Tell the journal once when it starts failing, then every 100 failures.
            if consecutiveFailures == Self.failuresBeforeReport || consecutiveFailures % 100 == 0 {
                writer.send(JournalEntry(
                    message: "Cannot sample the kernel's TCP sockets (\(consecutiveFailures) failures in a row): \(text). No alerts until it works again; the watchdog is not fed.",
                    priority: .error, messageID: MessageID.samplerFailure,
                    fields: [("CLOSEWAIT_REASON", "sampler"), ("CLOSEWAIT_ERROR", ByteString(text)), ("CLOSEWAIT_FAILURES", ByteString(String(consecutiveFailures)))]))
            }
        }
    }

    func reload() {
        notifier.reloading()
        switch ConfigLoader.load(path: options.configPath) {
        case let .success(new):
            let intervalChanged = new.interval != settings.interval
            if new.metricsListen != settings.metricsListen {
                logger.notice("metrics.listen changed; a listening address changes only at restart (systemctl restart closewaitd)")
            }
            settings = new
            policy.settings = new
            tracker.window = new.window
            collector.sampler.choice = new.source
            if new.namespaces != (collector.sampler.namespaces == nil ? .own : .all) {
                collector.sampler.namespaces = new.namespaces == .all ? NetNamespaces(proc: ProcFS(root: options.procRoot)) : nil
            }
            collector.owners.fullScanInterval = new.fullScanInterval
            collector.maxProcesses = new.maxProcesses
            collector.owners.invalidate()
            collector.sampler.foreignBudget = Self.namespaceBudget(interval: tickInterval)
            if intervalChanged { scheduleTimer() }
            health.reloadsSucceeded += 1
            logger.notice("configuration reloaded from \(options.configPath); history kept",
                          metadata: ["message_id": "\(MessageID.configReloaded)"])
        case let .failure(errors):
            health.reloadsFailed += 1
            logger.error("configuration \(options.configPath) rejected; still running with the previous one: \(errors.problems.map(\.description).joined(separator: "; "))",
                         metadata: ["message_id": "\(MessageID.configRejected)", "closewait.config_errors": "\(errors.problems.count)"])
        }
        notifier.reloaded(status: "Configuration reload finished.")
    }

    func stop() {
        notifier.stopping()
        logger.info("closewaitd stopping after \(ticks) ticks")
        timer?.cancel()
        exit(0)
    }
}
