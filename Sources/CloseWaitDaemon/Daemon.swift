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

    public init(
        configPath: String, logTarget: JournalWriter.Target, procRoot: String,
        stateFile: String? = StateFile.defaultPath, metricsSocket: (fd: Int32, origin: String)? = nil
    ) {
        self.configPath = configPath
        self.logTarget = logTarget
        self.procRoot = procRoot
        self.stateFile = stateFile
        self.metricsSocket = metricsSocket
    }
}

/// Daemon is the long-running loop: a DispatchSourceTimer on the main queue runs the tick
/// pipeline and hands its result to the outputs; signal sources stop (SIGTERM, SIGINT) and
/// reload (SIGHUP). All state is owned here, on the main actor.
@MainActor
public final class Daemon {
    let options: DaemonOptions
    private(set) var settings: Settings
    let writer: JournalWriter
    let logger: Logger
    let notifier: Notifier
    private(set) var pipeline: TickPipeline
    let outputs: TickOutputs
    var timer: DispatchSourceTimer?
    var signalSources: [DispatchSourceSignal] = []
    /// When the watchdog was last fed: after each good tick, and during a long full walk or
    /// search that is still advancing (`OwnerIndex.progress`).
    var lastWatchdogPing = 0.0
    var metricsServer: MetricsServer?
    public private(set) var ticks = 0

    public init(options: DaemonOptions, settings: Settings) {
        self.options = options
        self.settings = settings
        let writer = JournalWriter(target: options.logTarget)
        self.writer = writer
        var logger = Logger(label: "closewaitd") { _ in JournalLogHandler(writer: writer) }
        logger.logLevel = .info
        self.logger = logger
        let notifier = Notifier()
        self.notifier = notifier
        outputs = TickOutputs(writer: writer, logger: logger, notifier: notifier)
        outputs.stateFile = options.stateFile
        pipeline = TickPipeline(
            settings: settings, tickInterval: Self.tickInterval(settings.interval, watchdog: notifier.watchdogInterval),
            procRoot: options.procRoot)
        configure(settings)
    }

    /// No tick comes sooner than this, whatever the watchdog asks (a WATCHDOG_USEC of 1000
    /// would otherwise spin a core): the config's own minimum interval.
    public static let minimumTickInterval = 0.1

    /// The tick interval: the configured one, but at least two ticks per watchdog interval,
    /// and never below `minimumTickInterval`.
    static func tickInterval(_ configured: Double, watchdog: Double?) -> Double {
        guard let watchdog else { return configured }
        return max(minimumTickInterval, min(configured, watchdog / 2))
    }

    /// Why `daemon.scanner = "ebpf"` cannot run (then `closewaitd run` exits 69).
    public var scannerError: String? { pipeline.scannerError }

    var tickInterval: Double { Self.tickInterval(settings.interval, watchdog: notifier.watchdogInterval) }

    /// Applies every setting, at start and on each reload: the pipeline's, the outputs', and
    /// the timer's interval (once running). `metrics.listen` is bound at start only.
    func configure(_ new: Settings) {
        let intervalChanged = new.interval != settings.interval
        settings = new
        pipeline.configure(new, tickInterval: tickInterval)
        if let why = pipeline.scannerError, ticks > 0 {
            logger.error("daemon.scanner = \"ebpf\" but the eBPF scanner cannot run (\(why)); polling")
        }
        outputs.metricsTextfile = new.metricsTextfile
        outputs.metricsMaxProcesses = new.metricsMaxProcesses
        outputs.actions.settings = new.actions
        if intervalChanged, timer != nil { scheduleTimer() }
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
            logger.warning(
                "the watchdog interval (\(TimeSpan.format(watchdog))) is too short to sample within: sampling every \(TimeSpan.format(Self.minimumTickInterval)); raise WatchdogSec= to at least 1s"
            )
        } else if let watchdog = notifier.watchdogInterval, settings.interval > watchdog / 2 {
            logger.notice(
                "daemon.interval \(TimeSpan.format(settings.interval)) is longer than half the watchdog interval (\(TimeSpan.format(watchdog))); sampling every \(TimeSpan.format(watchdog / 2)) instead"
            )
        }
        logger.info(
            "closewaitd starting: interval \(TimeSpan.format(tickInterval)), config \(options.configPath), \(settings.rules.count) rules",
            metadata: ["message_id": "\(MessageID.started)"])
        startMetricsServer()
        if notifier.watchdogInterval != nil {
            pipeline.onWalkProgress { [weak self] in MainActor.assumeIsolated { self?.walkAdvanced() } }
        }
        scheduleTimer()
    }

    /// Serves /metrics on the socket `closewaitd run` was given, from its own thread. The
    /// server holds the feed (its pages); the feed holds the server (its counters) only
    /// weakly, so neither keeps the other.
    func startMetricsServer() {
        guard let (fd, origin) = options.metricsSocket else { return }
        let feed = outputs.metricsFeed
        let server = MetricsServer(listenFD: fd, page: { feed.page() }, health: { feed.staleness(now: wallClockNow()) })
        guard server.start() else {
            logger.error("cannot start the /metrics thread (TasksMax or pids.max reached?); metrics are not served")
            return
        }
        feed.serve(server)
        metricsServer = server
        outputs.serving = true
        logger.info("serving Prometheus metrics at http://\(MetricsServer.boundDescription(fd))/metrics (\(origin))")
    }

    func scheduleTimer() {
        timer?.cancel()
        let timer = DispatchSource.makeTimerSource(queue: .main)
        let interval = tickInterval
        timer.schedule(
            deadline: .now(), repeating: .nanoseconds(Int(interval * 1e9)),
            leeway: .milliseconds(Int(min(500, interval * 100))))
        timer.setEventHandler { [weak self] in
            MainActor.assumeIsolated { self?.tick() }
        }
        timer.resume()
        self.timer = timer
    }

    func tick() {
        let started = monotonicNow()
        defer { outputs.writeMetrics(tickDuration: monotonicNow() - started, interval: tickInterval) }
        let result: TickResult
        do {
            result = try pipeline.run(now: started)
        } catch {
            outputs.samplerFailed(error)
            return
        }
        // A full walk frees what it built; give it back rather than keep it as peak.
        if result.fullWalk { Memory.returnFreeMemory() }
        ticks += 1
        outputs.publish(
            result, ticks: ticks, interval: tickInterval, namespaceBudget: pipeline.collector.sampler.foreignBudget)
        if notifier.watchdogInterval != nil {
            notifier.watchdog()
            lastWatchdogPing = monotonicNow()
        }
        outputs.reportDroppedNotifications()
    }

    /// A long walk is advancing: feed the watchdog at most every quarter of its interval, and
    /// only once READY (systemd's start timeout covers the first tick).
    func walkAdvanced() {
        guard outputs.ready, let interval = notifier.watchdogInterval else { return }
        let now = monotonicNow()
        if now - lastWatchdogPing >= interval / 4 {
            notifier.watchdog()
            lastWatchdogPing = now
        }
    }

    nonisolated public static let version = "0.1.0"

    /// SIGHUP: the config file read again; a valid one applies (history kept), a rejected
    /// one is said and the previous one stays.
    func reload() {
        notifier.reloading()
        switch ConfigLoader.load(path: options.configPath) {
        case let .success(new):
            if new.metricsListen != settings.metricsListen {
                logger.notice(
                    "metrics.listen changed; a listening address changes only at restart (systemctl restart closewaitd)"
                )
            }
            configure(new)
            outputs.health.reloadsSucceeded += 1
            logger.notice(
                "configuration reloaded from \(options.configPath); history kept",
                metadata: ["message_id": "\(MessageID.configReloaded)"])
        case let .failure(errors):
            outputs.health.reloadsFailed += 1
            logger.error(
                "configuration \(options.configPath) rejected; still running with the previous one: \(errors.problems.map(\.description).joined(separator: "; "))",
                metadata: [
                    "message_id": "\(MessageID.configRejected)", "closewait.config_errors": "\(errors.problems.count)",
                ])
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
