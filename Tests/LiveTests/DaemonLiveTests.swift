import CloseWaitCore
import Foundation
import Testing
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// `closewaitd run` against real CLOSE_WAIT sockets, with sd_notify received on a real
/// datagram socket and alerts read from stderr (no journald here; the service test in a
/// booted container reads the real journal).
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct DaemonLiveTests {
    @Test func alertsOnALeakWithFieldsAndReportsHealth() throws {
        let leak = try Workload(["--processes", "1", "--v4", "6"])
        defer { leak.stop() }
        let holder = leak.holders[0]
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "count_warning = 5\ncount_critical = 1000"),
            environment: ["WATCHDOG_USEC": "2000000"])
        defer { daemon.stop() }

        let ready = try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        #expect(ready.contains("STATUS="))
        try daemon.notify.await("WATCHDOG=1") { $0 == "WATCHDOG=1" }
        try daemon.notify.await("a STATUS naming the leaker") { $0.contains("STATUS=") && $0.contains("alerting") }

        let alert = try daemon.awaitLine("count alert for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(alert.contains("warning: closewaitd-work[\(holder)] holds 6 CLOSE_WAIT sockets"))
        #expect(alert.contains("6 to 127.0.0.1:\(leak.port4)"))
        #expect(alert.contains("CLOSEWAIT_COUNT=6 "))
        #expect(alert.contains("CLOSEWAIT_TOP_PEER=127.0.0.1:\(leak.port4)"))
        #expect(alert.contains("CLOSEWAIT_REASON=count"))
        #expect(alert.contains("CLOSEWAIT_FD_LIMIT="))

        // `closewaitd status` reads the state file the daemon rewrites each tick.
        try waitFor("state file naming the leaker") {
            (try? String(contentsOfFile: daemon.statePath, encoding: .utf8))?.contains("\"pid\": \(holder),") ?? false
        }
        let status = try run(Build.path("closewaitd"), ["status", "--state-file", daemon.statePath])
        #expect(status.status == 0, "\(status.stderr)")
        let row = status.stdout.split(separator: "\n").first {
            $0.hasPrefix("\(holder) ") || $0.contains(" \(holder) ")
        }
        #expect(row?.contains("closewaitd-work") == true)
        #expect(row?.contains("warning (count)") == true, "\(status.stdout)")
        #expect(row?.contains("127.0.0.1:\(leak.port4)×6") == true)
        let json = try run(Build.path("closewaitd"), ["status", "--state-file", daemon.statePath, "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let entry = (doc?["processes"] as? [[String: Any]])?.first { $0["pid"] as? Int == Int(holder) }
        #expect(entry?["closeWait"] as? Int == 6)
        #expect(entry?["level"] as? String == "warning")
        #expect(doc?["daemonPid"] as? Int == Int(daemon.pid))

        // The leaker exits: the alert recovers.
        leak.stop()
        let recovered = try daemon.awaitLine("recovery for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.recovered)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(recovered.contains("no longer holds CLOSE_WAIT sockets"))

        daemon.signal(SIGTERM)
        #expect(try daemon.awaitExit() == 0)
        try daemon.notify.await("STOPPING=1") { $0.contains("STOPPING=1") }
    }

    @Test func statusWithoutADaemonSaysSo() throws {
        let result = try run(Build.path("closewaitd"), ["status", "--state-file", "/nonexistent/state.json"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("the daemon is not running"))
    }

    /// Issue 17, row 15: a daemon that runs but cannot write its state (/run full) is not
    /// "not running".
    @Test func statusTellsNoStateFileFromNoDaemon() throws {
        let unwritable = "/proc/closewaitd-test-\(getpid())/state.json"  // mkdir fails there
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "count_warning = 50"), extraArguments: ["--state-file", unwritable])
        defer { daemon.stop() }
        try daemon.awaitLine("the state file failure said") { $0.contains("cannot write the state file") }
        let result = try run(Build.path("closewaitd"), ["status", "--state-file", unwritable])
        #expect(result.status == 5, "\(result.stderr)")
        #expect(
            result.stderr.contains("the daemon runs (pid \(daemon.pid)) but there is no state at \(unwritable)"),
            "\(result.stderr)")
    }

    @Test func reloadAppliesNewThresholdsAndKeepsRunningOnABadConfig() throws {
        let leak = try Workload(["--processes", "1", "--v4", "4"])
        defer { leak.stop() }
        let holder = leak.holders[0]
        let daemon = try DaemonProcess(config: testConfig(thresholds: "count_warning = 50\ncount_critical = 100"))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        #expect(!daemon.log.contains("CLOSEWAIT_PID=\(holder) "))

        try daemon.writeConfig(testConfig(thresholds: "count_warning = 3\ncount_critical = 100"))
        let mark = daemon.notify.messages.count
        daemon.signal(SIGHUP)
        let reloading = try daemon.notify.await("RELOADING=1", after: mark) { $0.contains("RELOADING=1") }
        #expect(reloading.contains("MONOTONIC_USEC="))
        try daemon.notify.await("READY=1 after reload", after: mark) { $0.contains("READY=1") }
        try daemon.awaitLine("reload notice") {
            $0.contains("configuration reloaded") && $0.contains("MESSAGE_ID=\(MessageID.configReloaded)")
        }
        try daemon.awaitLine("alert under the new threshold") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
                && $0.contains("CLOSEWAIT_THRESHOLD=3 ")
        }

        try daemon.writeConfig("[thresholds]\ncount_warning = \"many\"\n")
        daemon.signal(SIGHUP)
        let rejected = try daemon.awaitLine("rejection") { $0.contains("MESSAGE_ID=\(MessageID.configRejected)") }
        #expect(rejected.contains("\(daemon.configPath):2: thresholds.count_warning: must be an integer"))
        #expect(rejected.contains("still running with the previous one"))
        // Still alive and still sampling.
        let after = daemon.notify.messages.count
        try daemon.notify.await("a STATUS after the rejected reload", after: after) { $0.hasPrefix("STATUS=") }
        #expect(daemon.process.isRunning)
    }

    @Test func refusesToStartOnABadConfig() throws {
        let daemon = try DaemonProcess(config: "[daemon]\ninterval = \"soon\"\nwindw = \"5min\"\n")
        defer { daemon.stop() }
        #expect(try daemon.awaitExit() == 78)
        #expect(daemon.log.contains("\(daemon.configPath):2: daemon.interval: \"soon\" is not a time span"))
        #expect(daemon.log.contains("\(daemon.configPath):3: daemon.windw: unknown key; did you mean window?"))
        #expect(!daemon.notify.messages.contains { $0.contains("READY=1") })
    }

    @Test func samplerFailureIsReportedWithoutWatchdogThenRecovers() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-emptyproc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // An empty /proc root with source = "proc" (polling): every sample fails.
        let failing = try DaemonProcess(
            config: testConfig(thresholds: "").replacingOccurrences(
                of: "window = \"10s\"", with: "window = \"10s\"\nsource = \"proc\"\nscanner = \"poll\""),
            extraArguments: ["--proc-root", root.path], environment: ["WATCHDOG_USEC": "2000000"])
        defer { failing.stop() }
        let line = try failing.awaitLine("sampler failure") { $0.contains("MESSAGE_ID=\(MessageID.samplerFailure)") }
        #expect(line.contains("net/tcp"))
        try failing.notify.await("STATUS says why") { $0.contains("STATUS=Sampling failed") }
        #expect(!failing.notify.messages.contains { $0.contains("WATCHDOG=1") || $0.contains("READY=1") })

        // Give it a /proc/net to read: it becomes ready.
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("net"), withIntermediateDirectories: true)
        let header =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        try header.write(to: root.appendingPathComponent("net/tcp"), atomically: true, encoding: .utf8)
        try header.write(to: root.appendingPathComponent("net/tcp6"), atomically: true, encoding: .utf8)
        try failing.notify.await("READY=1 once sampling works") { $0.contains("READY=1") }
        try failing.notify.await("WATCHDOG=1 once sampling works") { $0 == "WATCHDOG=1" }
        try failing.awaitLine("works-again notice") { $0.contains("sampling works again") }
    }

    /// Issue 9: a daemon that may not read other users' fd tables says so in STATUS, the
    /// journal and the state file instead of "No CLOSE_WAIT sockets".
    @Test func degradedAttributionIsVisible() throws {
        try #require(getuid() == 0, "needs root to drop to another user")
        let leak = try Workload(["--processes", "1", "--v4", "4"])
        defer { leak.stop() }
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "count_warning = 3"),
            launcher: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        defer { daemon.stop() }
        let warning = try daemon.awaitLine("the degraded warning") {
            $0.contains("MESSAGE_ID=\(MessageID.attributionDegraded)")
        }
        #expect(warning.contains("Attribution degraded:"))
        #expect(warning.contains("CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE"))
        let status = try daemon.notify.await("a degraded STATUS") { $0.contains("attribution degraded") }
        #expect(status.contains("processes unreadable (permission denied)"), "\(status)")
        #expect(!status.contains("No CLOSE_WAIT sockets"))
        try waitFor("a degraded state file") {
            guard let data = FileManager.default.contents(atPath: daemon.statePath),
                let doc = try? StateDocument.decode(Array(data))
            else { return false }
            return doc.attribution?.degraded == true && (doc.attribution?.unattributed ?? 0) >= 4
        }
        let table = try run(Build.path("closewaitd"), ["status", "--state-file", daemon.statePath])
        #expect(table.stdout.contains("warning: attribution degraded:"), "\(table.stdout)")
        // Said once, not every tick.
        usleep(1_000_000)
        #expect(daemon.log.components(separatedBy: "MESSAGE_ID=\(MessageID.attributionDegraded)").count == 2)
    }

    /// Issue 11: the textfile for node_exporter, written each tick, passes promtool's lint.
    @Test func metricsTextfilePassesPromtool() throws {
        let promtool = "/usr/bin/promtool"
        try #require(
            FileManager.default.isExecutableFile(atPath: promtool), "promtool (Debian prometheus) not installed")
        let leak = try Workload(["--processes", "1", "--v4", "4"])
        defer { leak.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-metrics-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let textfile = dir + "/closewaitd.prom"
        let daemon = try DaemonProcess(
            config: testConfig(
                thresholds: "count_warning = 3",
                extra: "[metrics]\ntextfile = \"\(textfile)\"\n"))
        defer { daemon.stop() }
        let holder = leak.holders[0]
        try waitFor("the textfile naming the holder") {
            ((try? String(contentsOfFile: textfile, encoding: .utf8)) ?? "").contains(
                "closewaitd_alert_firing{pid=\"\(holder)\"")
        }
        let text = try String(contentsOfFile: textfile, encoding: .utf8)
        #expect(text.contains("closewaitd_process_close_wait_sockets{pid=\"\(holder)\",comm=\"closewaitd-work\""))
        let lint = try run("/bin/sh", ["-c", "\(promtool) check metrics < '\(textfile)'"])
        #expect(lint.status == 0, "promtool: \(lint.stdout) \(lint.stderr)")
        #expect(lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool findings: \(lint.stdout) \(lint.stderr)")
    }
}
