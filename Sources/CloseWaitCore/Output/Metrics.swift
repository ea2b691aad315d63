/// Metrics renders the last tick's state in the Prometheus text exposition format (0.0.4):
/// `closewaitd_` names, base units, `_total` counters, identity in `_info`. Pure: the daemon
/// keeps a `MetricsState` each tick; a scrape or the textfile renders it and never reads /proc.
public enum Metrics {
    /// What the daemon's health adds to a tick's statuses.
    public struct Health: Sendable {
        public var lastSuccessfulTick: Double?
        public var tickDuration: Double
        public var samplerFailures: Int
        public var reloadsSucceeded: Int
        public var reloadsFailed: Int
        public var notificationsDropped: Int
        public var attribution: AttributionHealth
        public var unowned: Int
        /// What the last tick read of the other network namespaces.
        public var namespaces = NamespaceCoverage()
        /// Unowned sockets whose owner search is not finished (the per-tick budget).
        public var notYetSearched = 0
        /// Processes holding CLOSE_WAIT sockets past `daemon.max_processes`, not tracked.
        public var untracked = 0
        /// The scanner of the last tick.
        public var scanner: ScannerStatus?
        /// eBPF iterator passes so far, by why they ran; ticks that reused the last pass.
        public var passes: [PassSchedule.Reason: Int] = [:]
        public var passesReused = 0

        public init(
            lastSuccessfulTick: Double? = nil, tickDuration: Double = 0, samplerFailures: Int = 0,
            reloadsSucceeded: Int = 0, reloadsFailed: Int = 0, notificationsDropped: Int = 0,
            attribution: AttributionHealth = AttributionHealth(), unowned: Int = 0
        ) {
            self.lastSuccessfulTick = lastSuccessfulTick
            self.tickDuration = tickDuration
            self.samplerFailures = samplerFailures
            self.reloadsSucceeded = reloadsSucceeded
            self.reloadsFailed = reloadsFailed
            self.notificationsDropped = notificationsDropped
            self.attribution = attribution
            self.unowned = unowned
        }
    }

    /// Per-process series are capped: a host with thousands of leaking processes must not
    /// become thousands of series per metric. The processes with the most sockets are kept.
    public static let defaultMaxProcesses = 500
    /// Peers shown per alerting process.
    public static let peersPerProcess = 3

    public static func render(
        statuses: [ProcessStatus], firing: [(ProcessIdentity?, AlertReason, AlertLevel)], total: Int,
        health: Health, version: String, maxProcesses: Int = defaultMaxProcesses,
        diagnoses: [ProcessIdentity: Diagnosis] = [:]
    ) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let rendered =
                labels.isEmpty
                ? "" : "{" + labels.map { "\($0.0)=\"\(labelValue($0.1))\"" }.joined(separator: ",") + "}"
            out += "\(name)\(rendered) \(number(value))\n"
        }

        family("closewaitd_build_info", "gauge", "closewaitd's version; always 1.")
        sample("closewaitd_build_info", [("version", version)], 1)
        family(
            "closewaitd_close_wait_sockets", "gauge",
            "TCP sockets in CLOSE_WAIT on the host, every sampled network namespace included.")
        sample("closewaitd_close_wait_sockets", [], Double(total))
        family(
            "closewaitd_unowned_close_wait_sockets", "gauge",
            "CLOSE_WAIT sockets with no known owning process, by reason.")
        sample(
            "closewaitd_unowned_close_wait_sockets", [("reason", "owner-unreadable")],
            Double(health.attribution.unattributed))
        sample("closewaitd_unowned_close_wait_sockets", [("reason", "not-yet-searched")], Double(health.notYetSearched))
        sample(
            "closewaitd_unowned_close_wait_sockets", [("reason", "other")],
            Double(max(0, health.unowned - health.attribution.unattributed - health.notYetSearched)))

        let sorted = ProcessStatus.inReportOrder(statuses)
        let kept = sorted.prefix(max(0, maxProcesses))
        // Each process's labels once, for every per-process family.
        let rows = kept.map { ($0, labels($0.details)) }
        func perProcess(_ name: String, _ help: String, _ value: (ProcessStatus) -> Double?) {
            family(name, "gauge", help)
            for (p, labels) in rows { if let v = value(p) { sample(name, labels, v) } }
        }
        perProcess("closewaitd_process_close_wait_sockets", "CLOSE_WAIT sockets held by a process.") {
            Double($0.count)
        }
        perProcess(
            "closewaitd_process_close_wait_growth_per_minute",
            "New CLOSE_WAIT sockets per minute over the tracker window (fitted slope), once known."
        ) { $0.growthPerMinute }
        perProcess(
            "closewaitd_process_oldest_close_wait_age_seconds",
            "Age of the process's oldest CLOSE_WAIT socket (since first seen)."
        ) { $0.oldestAge }
        perProcess("closewaitd_process_open_fds", "Open file descriptors of the process.") { Double($0.details.fdOpen) }
        perProcess("closewaitd_process_max_fds", "The process's soft RLIMIT_NOFILE (absent when unlimited).") {
            $0.details.fdLimit.map(Double.init)
        }
        perProcess(
            "closewaitd_process_fd_exhaustion_seconds",
            "Predicted seconds until the process's open fds reach its limit at the current growth."
        ) { $0.predictedExhaustion }
        perProcess(
            "closewaitd_process_reset_but_held_sockets",
            "Sockets that left CLOSE_WAIT by a reset (keepalive, the peer's RST) while the process still holds their fds."
        ) { Double($0.heldAfterReset) }
        perProcess(
            "closewaitd_process_close_wait_left",
            "Sockets that left CLOSE_WAIT over the tracker window while the process lived (closed, or reset by the kernel)."
        ) { Double($0.flows.left) }
        perProcess(
            "closewaitd_process_open_fds_growth_per_minute",
            "New open file descriptors per minute over the tracker window (fitted slope), once known."
        ) {
            $0.fdGrowthPerMinute
        }
        family(
            "closewaitd_process_diagnosis_info", "gauge",
            "The cause class of an alerting process the daemon looked at, with its confidence; always 1.")
        for (p, labels) in rows {
            guard let d = diagnoses[p.details.identity] else { continue }
            sample(
                "closewaitd_process_diagnosis_info",
                labels + [("class", d.kind.rawValue), ("confidence", d.kind == .unknown ? "" : d.confidence.rawValue)],
                1)
        }

        family(
            "closewaitd_untracked_processes", "gauge",
            "Processes holding CLOSE_WAIT sockets that the daemon does not track: past daemon.max_processes, those with the fewest sockets."
        )
        sample("closewaitd_untracked_processes", [], Double(health.untracked))
        family(
            "closewaitd_process_series_dropped", "gauge",
            "Processes holding CLOSE_WAIT sockets left out of the per-process series by the cap (metrics.max_processes)."
        )
        sample("closewaitd_process_series_dropped", [], Double(sorted.count - kept.count))

        // Every per-process family obeys the cap: alerts and peers only for the kept processes.
        let byIdentity = Dictionary(kept.map { ($0.details.identity, $0) }, uniquingKeysWith: { a, _ in a })
        family(
            "closewaitd_alert_firing", "gauge",
            "1 for each alert firing now, by reason and level; per-process alerts carry the process's labels (only for the processes within metrics.max_processes)."
        )
        var alerting = [ProcessStatus]()
        var alertingSeen = Set<ProcessIdentity>()
        var alertingProcesses = Set<ProcessIdentity>()
        for (identity, reason, level) in firing.sorted(by: {
            ($0.0?.pid ?? -1, $0.1.rawValue) < ($1.0?.pid ?? -1, $1.1.rawValue)
        }) {
            if let identity { alertingProcesses.insert(identity) }
            if let identity, let status = byIdentity[identity] {
                sample(
                    "closewaitd_alert_firing",
                    labels(status.details) + [("reason", reason.rawValue), ("level", level.name)], 1)
                if alertingSeen.insert(identity).inserted { alerting.append(status) }
            } else if identity == nil {
                sample("closewaitd_alert_firing", [("reason", reason.rawValue), ("level", level.name)], 1)
            }
        }
        family(
            "closewaitd_alerting_processes", "gauge",
            "Processes with at least one alert firing, the ones past metrics.max_processes included.")
        sample("closewaitd_alerting_processes", [], Double(alertingProcesses.count))
        family(
            "closewaitd_process_peer_close_wait_sockets", "gauge",
            "CLOSE_WAIT sockets of an alerting process to each of its top peers.")
        for status in alerting {
            for peer in status.peers.prefix(peersPerProcess) {
                sample(
                    "closewaitd_process_peer_close_wait_sockets",
                    labels(status.details) + [
                        ("peer", peer.endpoint.description), ("netns", peer.netns.map(String.init) ?? ""),
                    ], Double(peer.count))
            }
        }

        family(
            "closewaitd_last_successful_tick_timestamp_seconds", "gauge",
            "When the last successful sample finished (Unix time).")
        sample("closewaitd_last_successful_tick_timestamp_seconds", [], health.lastSuccessfulTick ?? 0)
        family("closewaitd_tick_duration_seconds", "gauge", "How long the last tick took.")
        sample("closewaitd_tick_duration_seconds", [], health.tickDuration)
        family("closewaitd_sampler_failures_total", "counter", "Ticks whose kernel sample (or /proc listing) failed.")
        sample("closewaitd_sampler_failures_total", [], Double(health.samplerFailures))
        family(
            "closewaitd_network_namespaces", "gauge",
            "Network namespaces other than the daemon's at the last tick, by how their sockets were seen: read, unchanged (counters still), stale (the tick's budget ran out: an earlier table used), unread (never read yet), cut (table larger than the limit or outlasting the budget), failed, memberless (named, no process in it), orphaned (no task left, kept alive by its sockets: its last CLOSE_WAIT sockets still held)."
        )
        let ns = health.namespaces
        for (state, value) in [
            ("read", ns.read), ("unchanged", ns.unchanged), ("stale", ns.stale), ("unread", ns.unread),
            ("cut", ns.cut.count), ("failed", ns.failed.count), ("memberless", ns.memberless.count),
            ("orphaned", ns.orphaned.count),
        ] {
            sample("closewaitd_network_namespaces", [("state", state)], Double(value))
        }
        if let scanner = health.scanner {
            family(
                "closewaitd_scanner_info", "gauge",
                "The scanner the last tick used (ebpf or poll), what daemon.scanner asked for, how the state-change counter is attached, and why eBPF is not used (empty when it is)."
            )
            sample(
                "closewaitd_scanner_info",
                [
                    ("scanner", scanner.active.rawValue), ("choice", scanner.choice.rawValue),
                    ("attach", scanner.attach ?? ""), ("reason", Escape.line(scanner.reason ?? "", limit: 200)),
                ], 1)
            family(
                "closewaitd_ebpf_passes_total", "counter",
                "eBPF iterator passes, by why they ran (first, changed: a socket entered or left CLOSE_WAIT, audit: daemon.full_scan_interval, holder-gone, retry), and ticks that reused the last pass (reused)."
            )
            for reason in [PassSchedule.Reason.first, .changed, .audit, .holderGone, .retry] {
                sample(
                    "closewaitd_ebpf_passes_total", [("reason", reason.rawValue)], Double(health.passes[reason] ?? 0))
            }
            sample("closewaitd_ebpf_passes_total", [("reason", "reused")], Double(health.passesReused))
        }
        family(
            "closewaitd_attribution_problems", "gauge", "Processes the last tick's /proc walk could not read, by kind.")
        sample("closewaitd_attribution_problems", [("kind", "unreadable")], Double(health.attribution.unreadable))
        sample("closewaitd_attribution_problems", [("kind", "vanished")], Double(health.attribution.vanished))
        sample("closewaitd_attribution_problems", [("kind", "other")], Double(health.attribution.otherErrors))
        family("closewaitd_config_reloads_total", "counter", "Configuration reloads, by outcome.")
        sample("closewaitd_config_reloads_total", [("outcome", "success")], Double(health.reloadsSucceeded))
        sample("closewaitd_config_reloads_total", [("outcome", "failure")], Double(health.reloadsFailed))
        family(
            "closewaitd_notifications_dropped_total", "counter",
            "sd_notify messages dropped because systemd's socket was full.")
        sample("closewaitd_notifications_dropped_total", [], Double(health.notificationsDropped))
        return out
    }

    /// The /metrics endpoint's own counters, appended to a scrape (not to the textfile).
    public static func render(http: HTTPExchange.Counters) -> String {
        let name = "closewaitd_http_connections_total"
        var out = "# HELP \(name) Connections to the /metrics endpoint, by outcome.\n# TYPE \(name) counter\n"
        for (outcome, value) in [
            ("answered", http.responses), ("rejected", http.rejected), ("timed-out", http.timedOut),
            ("evicted", http.evicted),
        ] {
            out += "\(name){outcome=\"\(outcome)\"} \(value)\n"
        }
        return out
    }

    /// A process's identity labels; names escaped (they are the process's own choice).
    static func labels(_ d: ProcessDetails) -> [(String, String)] {
        [
            ("pid", String(d.pid)), ("comm", d.comm.escaped), ("unit", d.unit?.escaped ?? ""),
            ("container_runtime", d.container?.runtime.rawValue ?? ""),
            (
                "container_id",
                d.container.map { c in (c.userManager.map { $0.escaped + ": " } ?? "") + c.id.escaped } ?? ""
            ),
            // Kubernetes' own label names (scrape with honor_labels, or they become exported_*).
            ("container", d.container?.name?.escaped ?? ""),
            ("pod", d.container?.podName?.escaped ?? ""),
            ("namespace", d.container?.podNamespace?.escaped ?? ""),
        ]
    }

    /// The text format's label escaping (backslash, double quote, newline) over text that is
    /// already free of control characters (`Escape.bytes` for process-chosen names).
    static func labelValue(_ text: String) -> String {
        var out = ""
        for c in Escape.line(text).unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Integers without a fraction; NaN and infinities by their text-format names.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == value.rounded(), value.magnitude < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
