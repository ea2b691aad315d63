import CloseWaitCore
import CloseWaitLinux
import CloseWaitSystemd
import Glibc
import Logging

/// TickOutputs renders each tick's result, once, to everything that reads the daemon: the
/// journal (alerts, what could not be seen, once per change), systemd's STATUS, the state
/// file for `closewaitd status`, and the metrics page (scrapes and the textfile). Writing
/// never stops the daemon: a file that cannot be written is said once, and again once it
/// can.
@MainActor
final class TickOutputs {
    let writer: JournalWriter
    let logger: Logger
    let notifier: Notifier
    let metricsFeed = MetricsFeed()
    /// Whether a /metrics endpoint serves the feed.
    var serving = false
    var stateFile: String?
    var metricsTextfile: String?
    var metricsMaxProcesses = Metrics.defaultMaxProcesses
    /// The daemon's own health, as metrics report it.
    var health = Metrics.Health()
    private(set) var ready = false
    private(set) var consecutiveFailures = 0
    /// Repeated sampler failures before the journal hears of it (and STATUS says why).
    static let failuresBeforeReport = 3
    private var last:
        (
            statuses: [ProcessStatus], firing: [(ProcessIdentity?, AlertReason, AlertLevel)], total: Int,
            diagnoses: [ProcessIdentity: Diagnosis]
        ) = ([], [], 0, [:])
    private var fallbackReported = false
    private var stateFileFailed = false
    private var textfileFailed = false
    private var reportedDrops = 0
    /// Named network namespaces last reported as not sampled (said once per change).
    private var unreadableNamespaces: [String] = []
    private var namespaceReporter = NamespaceReporter()
    private var attribution = AttributionMonitor()
    /// The scanner last said in the journal.
    private var saidScanner: ScannerStatus?
    /// `[[action]]`: which alerts get an action this tick (the rails), and the runner that
    /// runs them off the tick's thread and journals how each ended.
    var actions = ActionPlanner()
    let runner: ActionRunner

    init(writer: JournalWriter, logger: Logger, notifier: Notifier) {
        self.writer = writer
        self.logger = logger
        self.notifier = notifier
        runner = ActionRunner(report: { [writer] entry in writer.send(entry) }, restart: UnitRestarter.run)
    }

    /// Everything a good tick says.
    /// - Parameters:
    ///   - ticks: good ticks so far, this one included; `interval`: the tick interval;
    ///   - namespaceBudget: what a tick may spend on other namespaces (said when it runs out).
    func publish(_ result: TickResult, ticks: Int, interval: Double, namespaceBudget: Double) {
        if consecutiveFailures >= Self.failuresBeforeReport {
            logger.notice("sampling works again after \(consecutiveFailures) failures")
        }
        consecutiveFailures = 0
        if let reason = result.fallbackReason, !fallbackReported {
            fallbackReported = true
            logger.warning("netlink sock_diag unavailable (\(reason)); reading /proc/net/tcp instead")
        }
        let coverage = result.health.coverage
        if coverage.memberless != unreadableNamespaces {
            if !coverage.memberless.isEmpty {
                logger.warning(
                    "\(coverage.memberless.count) named network namespace(s) with no process in them are not sampled (reading one needs setns, CAP_SYS_ADMIN): \(coverage.memberless.map { Escape.line($0) }.joined(separator: ", "))"
                )
            } else if !unreadableNamespaces.isEmpty {
                logger.notice("every named network namespace has a process in it again; all are sampled")
            }
            unreadableNamespaces = coverage.memberless
        }
        if let entry = namespaceReporter.update(coverage, budget: namespaceBudget) { writer.send(entry) }
        if result.scanner != saidScanner {
            saidScanner = result.scanner
            writer.send(ScannerMessage.entry(result.scanner))
        }
        health.scanner = result.scanner
        if let pass = result.pass {
            health.passes[pass, default: 0] += 1
        } else if result.scanner.active == .ebpf {
            health.passesReused += 1
        }
        for event in result.events { writer.send(AlertMessage.entry(event)) }
        act(on: result)
        if let entry = attribution.update(result.health.attribution) { writer.send(entry) }

        let status = StatusLine.render(
            statuses: result.statuses, alerting: result.alertingProcesses, total: result.total,
            health: result.health.attribution, notes: result.health.notes)
        if !ready {
            ready = true
            notifier.ready(status: status)
        } else {
            notifier.status(status)
        }
        writeState(result, status: status, ticks: ticks, interval: interval)
        health.lastSuccessfulTick = wallClockNow()
        health.attribution = result.health.attribution
        health.unowned = result.health.unowned
        health.namespaces = coverage
        health.notYetSearched = result.health.notYetSearched
        health.untracked = result.health.untracked
        last = (result.statuses, result.firing, result.total, result.diagnoses.mapValues(\.0))
    }

    /// A tick that could not sample: said in STATUS after a few, in the journal once when it
    /// starts and every 100 failures; the metrics keep the last good tick.
    func samplerFailed(_ error: any Error) {
        consecutiveFailures += 1
        health.samplerFailures += 1
        let text = "\(error)"
        guard consecutiveFailures >= Self.failuresBeforeReport else { return }
        notifier.status("Sampling failed \(consecutiveFailures) times in a row: \(text)")
        if consecutiveFailures == Self.failuresBeforeReport || consecutiveFailures % 100 == 0 {
            writer.send(
                JournalEntry(
                    message:
                        "Cannot sample the kernel's TCP sockets (\(consecutiveFailures) failures in a row): \(text). No alerts until it works again; the watchdog is not fed.",
                    priority: .error, messageID: MessageID.samplerFailure,
                    fields: [
                        ("CLOSEWAIT_REASON", "sampler"), ("CLOSEWAIT_ERROR", ByteString(text)),
                        ("CLOSEWAIT_FAILURES", ByteString(String(consecutiveFailures))),
                    ]))
        }
    }

    /// Says once (then every 1000 drops) that systemd is not reading its notify socket.
    func reportDroppedNotifications() {
        let dropped = notifier.dropped
        guard dropped > reportedDrops else { return }
        if reportedDrops == 0 || dropped / 1000 > reportedDrops / 1000 {
            logger.warning(
                "systemd's notify socket is full or gone: \(dropped) STATUS/WATCHDOG messages dropped so far (the loop never waits for it)"
            )
        }
        reportedDrops = dropped
    }

    /// Journals, then starts, every action the tick's alerts call for; each is journaled
    /// before (started, dry run, or held back by its rails) and, by the runner, after.
    func act(on result: TickResult) {
        guard !actions.settings.specs.isEmpty else { return }
        actions.keep(only: Set(result.statuses.map(\.details.identity)))
        for planned in actions.plan(result.events, now: monotonicNow(), running: runner.running) {
            writer.send(ActionMessage.before(planned))
            if planned.decision == .run || (planned.decision == .dryRun && planned.spec.unit != nil) {
                runner.start(planned)
            }
        }
    }

    /// Publishes the metrics page of the last good tick and the daemon's health to the
    /// endpoint and rewrites the textfile (if configured).
    func writeMetrics(tickDuration: Double, interval: Double) {
        health.tickDuration = tickDuration
        health.notificationsDropped = notifier.dropped
        guard serving || metricsTextfile != nil else { return }
        let input = MetricsFeed.Input(
            statuses: last.statuses, firing: last.firing, total: last.total,
            health: health, maxProcesses: metricsMaxProcesses, diagnoses: last.diagnoses, interval: interval)
        // Rendered once a tick at most: for the textfile here, and the same bytes serve every
        // scrape of this tick (without a textfile, the first scrape renders).
        let page = metricsTextfile.map { _ in MetricsFeed.render(input) }
        if serving { metricsFeed.publish(input, page: page) }
        if let path = metricsTextfile, let page {
            rewrite(path, page, what: "the metrics textfile", failed: &textfileFailed)
        }
    }

    /// Rewrites the state file atomically (a temporary file renamed over it).
    func writeState(_ result: TickResult, status: String, ticks: Int, interval: Double) {
        guard let path = stateFile else { return }
        let document = StateDocument(
            statuses: result.statuses, firing: result.firing, total: result.total, status: status,
            daemonPID: getpid(), ticks: ticks, wallTime: wallClockNow(), interval: interval,
            attribution: result.health.attribution, diagnoses: result.diagnoses,
            warnings: result.health.notes, scanner: result.scanner.summary
        ).json()
        rewrite(
            path, document.renderedBytes(pretty: true) + [0x0a], what: "the state file for `closewaitd status`",
            failed: &stateFileFailed)
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
}
