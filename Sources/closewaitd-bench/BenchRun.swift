import CloseWaitCore
import CloseWaitDaemon
import CloseWaitLinux
import Foundation
import WorkloadSupport
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Timings of one measure, in seconds.
struct Timings {
    var samples: [Double] = []
    var median: Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var min: Double { samples.min() ?? .nan }
    var max: Double { samples.max() ?? .nan }
}

/// BenchRun measures one workload size in every regime.
struct BenchRun {
    let size: WorkloadSize
    let config: BenchConfig
    var correctnessFailures = 0
    var checkedSockets = 0
    var checkedTicks = 0
    /// Sockets without an owner yet at their tick while the tick said its owner search was
    /// still going on (the per-tick budget of fd reads): pending, not wrong.
    var pendingAttributions = 0
    /// Netlink dumps timed between ticks in the same conditions as each tick's own (after the
    /// same attribution check): the fair denominator of "plateau tick / dump".
    var pairedDumps = Timings()
    var rows: [(String, Timings?, Double?, String)] = []  // name, timings, ratio, note
    /// Of the last `ticks` call, what the scanner took (sample + attribute + join): the rest is
    /// tracking, deciding and the diagnosis looks, the same whichever scanner runs.
    var scannerPart = Timings()

    init(size: WorkloadSize, config: BenchConfig) {
        self.size = size
        self.config = config
    }

    var closewaitd: String { config.binDir + "/closewaitd" }
    var ssPath: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") ? "/usr/bin/ss" : "/bin/ss" }

    mutating func run() throws -> (text: String, correctnessFailures: Int) {
        log("\(size.name): idle host (no CLOSE_WAIT)")
        var idleHost = "", ssIdle = Timings(), idleTick = Timings()
        do {
            let w = try startWorkload(closeWait: true, extra: [], closeWaitOff: true)
            defer { w.stop() }
            ssIdle = try timeCommand(ssPath, ["-tnp", "state", "close-wait"])
            var pipeline = TickPipeline.bench(fdCount: config.fdCount, scanner: config.scanner)
            let first = try pipeline.run(now: monotonicNow())
            idleHost = "\(first.total) CLOSE_WAIT"
            idleTick = try ticks(&pipeline, count: config.ticks, spacing: 0, workload: nil)
        }

        log("\(size.name): plateau")
        let w = try startWorkload(closeWait: true, extra: [])
        var ss = Timings(), ssCPU = Timings(), cold = Timings(), plateau = Timings(), full = Timings(), dump = Timings()
        var hostLine = ""
        var rss = (peak: 0.0, anon: 0.0, file: 0.0), cpuPerMinute = 0.0
        var render = Timings(), renderedBytes = 0, plateauScanner = Timings()
        do {
            defer { w.stop() }
            (ss, ssCPU) = try timeCommandWithCPU(ssPath, ["-tnp", "state", "close-wait"])
            cold = try timeCommand(closewaitd, ["snapshot", "--json", "--scanner", config.scanner.rawValue])
            var pipeline = TickPipeline.bench(fdCount: config.fdCount, scanner: config.scanner)
            pipeline.keepAttribution = true
            let start = monotonicNow()
            let first = try pipeline.run(now: monotonicNow())
            full.samples.append(monotonicNow() - start)
            if let (records, owners) = first.attribution { check(records, owners, against: w) }
            let stats = first.scan
            hostLine =
                "\(first.total) CLOSE_WAIT (\(size.holders) holders × \(size.perHolder), "
                + "\(Int(size.v6Share * 100))% IPv6), \(stats.fdsRead) fds, \(stats.processesScanned) processes"
            plateau = try ticks(&pipeline, count: config.ticks, spacing: 0, workload: w, pairDumps: true)
            plateauScanner = scannerPart
            // One scrape of /metrics: the pure render of the last tick's result (no /proc).
            let last = try pipeline.run(now: monotonicNow())
            for _ in 0..<config.ticks {
                let start = monotonicNow()
                let page = Metrics.render(
                    statuses: last.statuses, firing: last.firing, total: last.total, health: Metrics.Health(),
                    version: "bench")
                render.samples.append(monotonicNow() - start)
                renderedBytes = page.utf8.count
            }
            var sampler = KernelSampler(choice: .netlink)
            for _ in 0..<config.ticks {
                let start = monotonicNow()
                _ = try sampler.sample(states: [.closeWait])
                dump.samples.append(monotonicNow() - start)
            }
            (rss, cpuPerMinute) = try daemonCost()
        }
        log("\(size.name): growing leak, 1% new CLOSE_WAIT sockets per 1 s tick")
        var growth = Timings(), growthScanner = Timings()
        do {
            let perHolder = Swift.max(0.2, 0.01 * Double(size.total) / Double(size.holders))
            let g = try startWorkload(closeWait: true, extra: ["--grow-per-second", String(perHolder)])
            defer { g.stop() }
            var pipeline = TickPipeline.bench(fdCount: config.fdCount, scanner: config.scanner)
            _ = try pipeline.run(now: monotonicNow())
            growth = try ticks(&pipeline, count: config.ticks, spacing: 1, workload: g)
            growthScanner = scannerPart
        }
        log("\(size.name): churn, one holder replaced per second")
        var churn = Timings()
        do {
            let c = try startWorkload(closeWait: true, extra: ["--churn-per-second", "1"])
            defer { c.stop() }
            var pipeline = TickPipeline.bench(fdCount: config.fdCount, scanner: config.scanner)
            _ = try pipeline.run(now: monotonicNow())
            churn = try ticks(&pipeline, count: config.ticks, spacing: 1, workload: c)
        }

        let ssMedian = ss.median, ssIdleMedian = ssIdle.median
        let ebpf = config.scanner == .ebpf
        var text =
            "\n### \(size.name), scanner \(config.scanner.rawValue)"
            + (ebpf ? "" : ", fd count by \(config.fdCount.rawValue)") + ": \(hostLine)\n\n"
        text += "| measure | median | min–max | ratio to ss | goal |\n|---|---|---|---|---|\n"
        func row(_ name: String, _ t: Timings, _ reference: Double?, _ goal: String) {
            let ratio = reference.map { String(format: "%.3f×", t.median / $0) } ?? "—"
            text += "| \(name) | \(ms(t.median)) | \(ms(t.min))–\(ms(t.max)) | \(ratio) | \(goal) |\n"
        }
        row("`ss -tnp state close-wait` (plateau)", ss, ssMedian, "")
        row("`ss -tnp state close-wait` (idle host: \(idleHost))", ssIdle, ssIdleMedian, "")
        row("cold `closewaitd snapshot --json` (whole process)", cold, ssMedian, "≤ 0.6×")
        row("idle-host tick", idleTick, ssIdleMedian, "≤ 0.03×")
        row(ebpf ? "plateau tick (the last pass reused)" : "plateau tick", plateau, ssMedian, ebpf ? "" : "≤ 0.08×")
        row("  of which the scanner (sample, attribute, join)", plateauScanner, ssMedian, ebpf ? "≤ 1 ms (large)" : "")
        row(
            ebpf ? "changing tick (+1%/tick: one pass)" : "growing-leak tick (+1%/tick)", growth, ssMedian,
            ebpf ? "" : "≤ 0.3×")
        row("  of which the scanner (sample, attribute, join)", growthScanner, ssMedian, ebpf ? "≤ 0.05× (large)" : "")
        row("churn tick (1 holder replaced/s)", churn, ssMedian, "")
        row(
            ebpf
                ? "first tick (a pass, every holder's details read)"
                : "full-walk tick (every full_scan_interval, 5 min by default)",
            full, ssMedian, "")
        row("netlink dump alone (IPv4 + IPv6, decoded), back to back", dump, ssMedian, "")
        row(
            "netlink dump alone, between the plateau ticks (after the same check as each tick)", pairedDumps, ssMedian,
            "")
        text += String(
            format: "| plateau tick / netlink dump alone (between the ticks) | %.2f× | | | ≤ 2× |\n",
            plateau.median / pairedDumps.median)
        text +=
            "| one /metrics scrape: render of \(renderedBytes / 1024) KiB from the last tick (no /proc reads) | \(ms(render.median)) | \(ms(render.min))–\(ms(render.max)) | | ≤ 5 ms (medium) |\n"
        text += String(
            format:
                "| daemon peak RSS (VmHWM), /metrics on and scraped every 15 s | %.1f MiB (at the end: %.1f anonymous, %.1f file-backed) | | | ≤ 25 MiB |\n",
            rss.peak, rss.anon, rss.file)
        text += String(
            format:
                "| daemon CPU per minute at interval 5s, %@ included (%.0f s run) | %.2f s (%.2f%% of a core) | | | %@ |\n",
            ebpf ? "audit passes" : "full walks", config.daemonSeconds, cpuPerMinute, cpuPerMinute / 60 * 100,
            ebpf ? "≤ 0.5% (large)" : "≤ 3% (large)")
        let cpuPerTick = cpuPerMinute / 12
        text += String(
            format:
                "| daemon CPU per tick (minute average) vs CPU of one `ss -tnp` (%@) | %@ | | %.3f× | ≤ 0.08× (medium) |\n",
            ms(ssCPU.median), ms(cpuPerTick), cpuPerTick / ssCPU.median)
        text +=
            "\ncorrectness: \(checkedTicks) ticks, \(checkedSockets) socket attributions checked against the manifest, "
            + "\(correctnessFailures) mismatches, \(pendingAttributions) still being searched for at their tick\n"
        return (text, correctnessFailures)
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
    }

    func ms(_ seconds: Double) -> String {
        seconds < 0.01 ? String(format: "%.2f ms", seconds * 1000) : String(format: "%.1f ms", seconds * 1000)
    }

    func startWorkload(closeWait: Bool, extra: [String], closeWaitOff: Bool = false) throws -> Workload {
        let arguments = size.arguments(closeWait: !closeWaitOff) + extra
        return try Workload(arguments, timeout: 300, duration: 900)
    }

    /// Runs a command `config.runs` times (after one warm-up), timing each whole run from
    /// posix_spawn to waitpid, output to /dev/null (what a script calling it would pay).
    func timeCommand(_ executable: String, _ arguments: [String]) throws -> Timings {
        try timeCommandWithCPU(executable, arguments).wall
    }

    /// The same, also returning the CPU (user + system) each run used.
    func timeCommandWithCPU(_ executable: String, _ arguments: [String]) throws -> (wall: Timings, cpu: Timings) {
        var t = Timings(), cpu = Timings()
        for i in 0...config.runs {
            let start = monotonicNow()
            let (status, used) = try Self.spawnAndWaitCPU(executable, arguments)
            let elapsed = monotonicNow() - start
            guard status == 0 else { throw TimedOut(description: "\(executable) \(arguments) exited \(status)") }
            if i > 0 { t.samples.append(elapsed); cpu.samples.append(used) }
        }
        return (t, cpu)
    }

    func spawnAndWait(_ executable: String, _ arguments: [String]) throws -> Int32 {
        try Self.spawnAndWaitCPU(executable, arguments).status
    }

    static func spawnAndWaitCPU(_ executable: String, _ arguments: [String]) throws -> (status: Int32, cpu: Double) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else { throw TimedOut(description: "posix_spawn \(executable): \(rc)") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let cpu =
            Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(
                usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return ((status >> 8) & 0xff, cpu)
    }

    /// Times `count` daemon ticks (the daemon's own pipeline: sample every namespace,
    /// attribute, join, track, decide, diagnose); `spacing` seconds apart (0: back to back).
    /// With a workload, checks each tick's attribution.
    /// `pairDumps`: also time a dump alone between the ticks, preceded by the same
    /// attribution check as each tick (the check walks megabytes, so a dump right after it runs
    /// with colder caches than dumps back to back; measured: 16.9 ms in ticks, 11.9 ms alone).
    mutating func ticks(
        _ pipeline: inout TickPipeline, count: Int, spacing: Double, workload: Workload?,
        pairDumps: Bool = false
    ) throws -> Timings {
        var t = Timings()
        scannerPart = Timings()
        var phases = [Timings](repeating: Timings(), count: 5)
        pipeline.keepAttribution = workload != nil
        var sampler = KernelSampler(choice: .netlink)
        var next = monotonicNow() + spacing
        for _ in 0..<count {
            if spacing > 0 {
                while monotonicNow() < next { usleep(10_000) }
                next += spacing
            }
            let start = monotonicNow()
            let result = try pipeline.run(now: start)
            t.samples.append(monotonicNow() - start)
            let p = result.phases
            scannerPart.samples.append(p.sample + p.attribute + p.join)
            for (i, phase) in [p.sample, p.attribute, p.join, p.track + p.decide, p.diagnose].enumerated() {
                phases[i].samples.append(phase)
            }
            if let workload, let (records, owners) = result.attribution {
                check(records, owners, against: workload, pending: result.scan.notYetSearched)
                if pairDumps {
                    // A dump alone after the check, then the same check again, so the next tick
                    // starts from what this dump started from.
                    let start = monotonicNow()
                    _ = try sampler.sample(states: [.closeWait])
                    pairedDumps.samples.append(monotonicNow() - start)
                    let counts = (checkedTicks, checkedSockets, correctnessFailures, pendingAttributions)
                    check(records, owners, against: workload, pending: result.scan.notYetSearched)
                    // Not counted twice.
                    (checkedTicks, checkedSockets, correctnessFailures, pendingAttributions) = counts
                }
            }
        }
        log(
            "  tick phases (median): sample \(ms(phases[0].median)), attribute \(ms(phases[1].median)), "
                + "join \(ms(phases[2].median)), track+decide \(ms(phases[3].median)), diagnose \(ms(phases[4].median)) "
                + "(max \(ms(phases[4].max)))")
        return t
    }

    /// Every sampled socket the manifest knows must have exactly the manifest's owners; one
    /// with none while the tick said `pending` sockets' search goes on is counted apart.
    mutating func check(_ records: [SocketRecord], _ owners: OwnerMap, against workload: Workload, pending: Int = 0) {
        guard let manifest = try? workload.owners() else { correctnessFailures += 1; return }
        checkedTicks += 1
        for record in records {
            guard let expected = manifest[record.inode] else { continue }
            checkedSockets += 1
            let got = Set(owners[record.inode])
            if got != expected {
                // A holder killed by churn between the sample and the fd walk is not a miss.
                if expected.allSatisfy({ kill($0, 0) != 0 }) { continue }
                if got.isEmpty && pending > 0 {
                    pendingAttributions += 1
                    continue
                }
                correctnessFailures += 1
                if correctnessFailures <= 5 {
                    log("mismatch: inode \(record.inode) owners \(got.sorted()) expected \(expected.sorted())")
                }
            }
        }
    }

    /// Runs `closewaitd run` at a 5 s interval with the default config; after a 10 s warm-up
    /// (the first full walk) counts its CPU over `daemonSeconds` (305 by default: one periodic
    /// full walk included), with `[metrics] listen` on and a scrape every 15 s; returns peak
    /// RSS, anonymous and file-backed RSS at the end (MiB) and CPU seconds per minute.
    func daemonCost() throws -> ((peak: Double, anon: Double, file: Double), Double) {
        let configPath = NSTemporaryDirectory() + "closewaitd-bench-\(getpid()).toml"
        let port = freeLoopbackPort()
        try
            "[daemon]\ninterval = \"5s\"\nscanner = \"\(config.scanner.rawValue)\"\n[metrics]\nlisten = \"127.0.0.1:\(port)\"\n"
            .write(
                toFile: configPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: closewaitd)
        process.arguments = ["run", "--config", configPath, "--log", "stderr", "--state-file", ""]
        var environment = ProcessInfo.processInfo.environment
        environment["CLOSEWAITD_FD_COUNT"] = config.fdCount.rawValue
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        func cpuSeconds() -> Double {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat[(stat.lastIndex(of: ")") ?? stat.startIndex)...].split(separator: " ")
            let ticks = (fields.count > 13 ? (Double(fields[12]) ?? 0) + (Double(fields[13]) ?? 0) : 0)
            return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        let warmUp = min(10, config.daemonSeconds / 3)
        usleep(UInt32(warmUp * 1e6))
        let cpuAtStart = cpuSeconds()
        let start = monotonicNow()
        var nextScrape = start
        while monotonicNow() - start < config.daemonSeconds && process.isRunning {
            if monotonicNow() >= nextScrape {
                _ = try? LoopbackClient.get(port: port)
                nextScrape += 15
            }
            usleep(100_000)
        }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func kib(_ key: String) -> Double {
            status.split(separator: "\n").first { $0.hasPrefix(key) }
                .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) } ?? 0
        }
        let cpu = cpuSeconds() - cpuAtStart
        kill(pid, SIGTERM)
        process.waitUntilExit()
        return (
            (kib("VmHWM:") / 1024, kib("RssAnon:") / 1024, kib("RssFile:") / 1024), cpu * 60 / (monotonicNow() - start)
        )
    }
}

extension TickPipeline {
    /// The daemon's pipeline with the shipped defaults, netlink only, a full walk (poll) or an
    /// audit pass (eBPF) every 60 s.
    /// - Parameter busy: every other namespace read on every tick (no idle-namespace reuse);
    ///   with eBPF, a pass every tick (as when sockets change state all the time).
    static func bench(
        fdCount: FdScanner.FdCountMethod, scanner: ScannerChoice, fullScanInterval: Double = 60, busy: Bool = false
    ) -> TickPipeline {
        var settings = Settings()
        settings.source = .netlink
        settings.scanner = scanner
        settings.fullScanInterval = busy && scanner == .ebpf ? 0 : fullScanInterval
        return TickPipeline(
            settings: settings, tickInterval: settings.interval,
            prepare: { collector in
                collector.fdTables.scanner.fdCountMethod = fdCount
                if busy { collector.sampler.foreignRecheck = 0 }
            })
    }
}
