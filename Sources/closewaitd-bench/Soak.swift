import CloseWaitCore
import Foundation
import WorkloadSupport
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Soak runs the release daemon at a 1 s interval for a long time against three real
/// workloads: a bounded pool whose connections turn over (must never alert), a steady leak
/// (must alert), and short-lived holders coming and going. It samples the daemon's RSS and
/// its own fd count at a fixed period and fails on an upward trend in either, on any alert
/// for the pool or the short-lived holders, or on a missed leak alert (`make soak`).
struct Soak {
    var seconds: Double
    var binDir: String

    struct Sample {
        var elapsed: Double
        var rssKiB: Int
        var fds: Int
        var ticks: Int
    }

    static let config = """
        [daemon]
        interval = "1s"
        window = "60s"

        [alerts]
        hold = 3
        reminder = "10min"

        [thresholds]
        count_warning = 100
        count_critical = 1000
        growth_warning = 5
        growth_critical = 1000
        age_warning = "1h"
        age_critical = "2h"
        total_warning = 0
        total_critical = 0
        """

    func run() throws -> Bool {
        setenv("CLOSEWAITD_BIN_DIR", binDir, 1)
        let duration = Int(seconds) + 120
        // 2 pool holders with 40 sockets each, one replaced every half second per holder.
        let pool = try Workload(["--processes", "2", "--v4", "40", "--rotate-per-second", "2"], duration: duration)
        defer { pool.stop() }
        // One leaker gaining a socket a second (60/min) up to 240, then holding them: the
        // daemon's own state stops growing there, so a later RSS trend is the daemon's.
        let leak = try Workload(
            ["--processes", "1", "--v4", "1", "--grow-per-second", "1", "--grow-max", "240"], duration: duration)
        defer { leak.stop() }
        // Four holders of 2 sockets each, one replaced every second.
        let shortLived = try Workload(["--processes", "4", "--v4", "2", "--churn-per-second", "1"], duration: duration)
        defer { shortLived.stop() }

        let base = FileManager.default.temporaryDirectory.appendingPathComponent("closewaitd-soak-\(getpid())").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try Self.config.write(toFile: base + "/config.toml", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: base + "/daemon.log", contents: nil)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: binDir + "/closewaitd")
        daemon.arguments = [
            "run", "--config", base + "/config.toml", "--log", "stderr", "--state-file", base + "/state.json",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        daemon.environment = environment
        daemon.standardError = FileHandle(forWritingAtPath: base + "/daemon.log")
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL); daemon.waitUntilExit() } }
        let pid = daemon.processIdentifier

        let period = seconds >= 600 ? 60.0 : max(5, seconds / 12)
        print("soak: daemon pid \(pid), \(Int(seconds)) s at a 1 s interval, a sample every \(Int(period)) s")
        print("  pool holders \(pool.holders), leaker \(leak.holders), short-lived holders churning")
        var samples = [Sample]()
        let start = Date()
        var next = period
        while true {
            let elapsed = Date().timeIntervalSince(start)
            guard daemon.isRunning else {
                print("soak: the daemon exited (status \(daemon.terminationStatus))"); return false
            }
            if elapsed >= next || elapsed >= seconds {
                let sample = Sample(
                    elapsed: elapsed, rssKiB: Self.rssKiB(pid), fds: Self.fdCount(pid),
                    ticks: Self.ticks(base + "/state.json"))
                samples.append(sample)
                print(
                    String(
                        format: "  %6.0f s  RSS %6.1f MiB  fds %3d  ticks %5d", sample.elapsed,
                        Double(sample.rssKiB) / 1024, sample.fds, sample.ticks))
                fflush(nil)
                next += period
            }
            if elapsed >= seconds { break }
            usleep(200_000)
        }
        kill(pid, SIGTERM)
        try waitFor("daemon exit", timeout: 10) { !daemon.isRunning }
        let log = (try? String(contentsOfFile: base + "/daemon.log", encoding: .utf8)) ?? ""
        return Self.judge(
            samples: samples, log: log, quiet: pool.everyHolder().union(shortLived.everyHolder()),
            leaker: leak.holders.first ?? 0, exitStatus: daemon.terminationStatus, seconds: seconds)
    }

    /// - Parameter quiet: the pool's and the short-lived holders' pids: any alert for one is
    ///   false. Alerts for other processes on the host (not ours) are counted, not judged.
    static func judge(
        samples: [Sample], log: String, quiet: Set<Int32>, leaker: Int32, exitStatus: Int32, seconds: Double
    ) -> Bool {
        var ok = true
        func fail(_ why: String) { print("soak: FAIL: \(why)"); ok = false }
        let alerts = log.split(separator: "\n").filter {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") || $0.contains("MESSAGE_ID=\(MessageID.escalated)")
        }
        let alertPids = alerts.compactMap { line -> Int32? in
            guard let range = line.range(of: "CLOSEWAIT_PID=") else { return nil }
            return Int32(line[range.upperBound...].prefix(while: \.isNumber))
        }
        let leakAlerts = alertPids.filter { $0 == leaker }.count
        let falseAlerts = alertPids.filter(quiet.contains)
        let others = alertPids.filter { $0 != leaker && !quiet.contains($0) }
        print(
            "  alerts: \(leakAlerts) for the leaker, \(falseAlerts.count) for the pool and short-lived holders, "
                + "\(others.count) for other processes on the host")
        if leakAlerts == 0 { fail("no alert for the leaking process \(leaker)") }
        if !falseAlerts.isEmpty { fail("alerts for processes that do not leak: \(Set(falseAlerts).sorted())") }
        if exitStatus != 0 { fail("the daemon exited with \(exitStatus) on SIGTERM") }
        if log.contains("Sampling failed") || log.contains("error:") { fail("the daemon logged errors") }
        // Trends over the samples after the first quarter (start-up, the first full walks,
        // the leak still growing).
        let steady = Array(samples.dropFirst(max(1, samples.count / 4)))
        if steady.count >= 3 {
            let rss = slope(steady.map { ($0.elapsed, Double($0.rssKiB)) })
            let fds = slope(steady.map { ($0.elapsed, Double($0.fds)) })
            let rssGrowth = rss * seconds / 1024  // MiB over the whole run, by the fitted line
            let fdGrowth = fds * seconds
            let rssRange = Double(steady.map(\.rssKiB).max()! - steady.map(\.rssKiB).min()!) / 1024
            print(
                String(
                    format: "  RSS trend %+.2f MiB over the run (range %.2f MiB); fd trend %+.1f (range %d–%d)",
                    rssGrowth, rssRange, fdGrowth, steady.map(\.fds).min()!, steady.map(\.fds).max()!))
            if rssGrowth > 2 { fail(String(format: "RSS rises: %+.2f MiB over the run", rssGrowth)) }
            if steady.map(\.fds).max()! - steady.map(\.fds).min()! > 2 { fail("the daemon's fd count changes") }
            let ticks = samples.last!.ticks - samples.first!.ticks
            let expected = samples.last!.elapsed - samples.first!.elapsed
            print(String(format: "  ticks: %d in %.0f s", ticks, expected))
            if Double(ticks) < expected * 0.8 { fail("ticks fell behind the 1 s interval") }
        } else {
            fail("too few samples to judge a trend")
        }
        print("soak: \(ok ? "PASS" : "FAIL")")
        return ok
    }

    /// Least-squares slope of y over x.
    static func slope(_ points: [(Double, Double)]) -> Double {
        let n = Double(points.count)
        let mx = points.map(\.0).reduce(0, +) / n, my = points.map(\.1).reduce(0, +) / n
        let sxx = points.map { ($0.0 - mx) * ($0.0 - mx) }.reduce(0, +)
        guard sxx > 0 else { return 0 }
        return points.map { ($0.0 - mx) * ($0.1 - my) }.reduce(0, +) / sxx
    }

    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.filter(\.isNumber)) ?? 0
    }

    static func fdCount(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func ticks(_ statePath: String) -> Int {
        guard let data = FileManager.default.contents(atPath: statePath),
            let document = try? StateDocument.decode(Array(data))
        else { return 0 }
        return document.ticks
    }
}
