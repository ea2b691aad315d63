import CloseWaitCore
import Foundation
import Testing
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// The fault suite of issue 8: the real daemon against hostile processes, a manager that
/// stops reading, files that are not files, and a hostile state file. Each asserts the
/// outcome: exit status, message, the daemon still ticking, nothing lost.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct DaemonFaultTests {
    static func hex(_ text: String) -> String { Array(text.utf8).map { String(format: "%02x", $0) }.joined() }

    /// Rows 2, 3, 4: comms that hid a leak, forged a STOPPING=1 line or a log line, or
    /// cleared the terminal.
    @Test(arguments: ["\u{301}leaky-java", "\rSTOPPING=1\r", "\u{1b}[2J\u{1b}[H\nx"])
    func aHostileCommIsReportedEscapedEverywhere(comm: String) throws {
        let leak = try Workload(["--processes", "1", "--v4", "6", "--comm-hex", Self.hex(comm)])
        defer { leak.stop() }
        let holder = leak.holders[0]
        let escaped = ByteString(comm).escaped
        let daemon = try DaemonProcess(config: testConfig(thresholds: "count_warning = 5\ncount_critical = 1000"))
        defer { daemon.stop() }

        let alert = try daemon.awaitLine("count alert for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(alert.contains("warning: \(escaped)[\(holder)] holds 6 CLOSE_WAIT sockets"), "\(alert)")
        #expect(alert.contains("CLOSEWAIT_COMM=\(escaped) "))
        // No forged line: every stderr line is the daemon's own.
        for line in daemon.log.split(separator: "\n") {
            #expect(line.hasPrefix("closewaitd[\(daemon.pid)]: ") || line.hasPrefix("closewaitd: "), "\(line)")
        }
        #expect(!daemon.log.contains("\u{1b}") && !daemon.log.contains("\r"))

        // STATUS names the holder escaped, and a datagram holds no assignment but its own.
        // STATUS names the process with the most sockets: the holder, unless another suite's
        // (or a soak's) process holds more right now.
        try daemon.notify.await("a STATUS after the alert") { $0.hasPrefix("STATUS=") && $0.contains("alerting") }
        if let status = daemon.notify.messages.last(where: { $0.contains("[\(holder)]") }) {
            #expect(status.contains("max \(escaped)[\(holder)] 6"), "\(status)")
        }
        for message in daemon.notify.messages {
            for line in message.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
                #expect(!line.hasPrefix("STOPPING="), "\(message)")
            }
        }

        // snapshot and status tables: one row for it, escaped; JSON keeps the text.
        let table = try run(Build.path("closewaitd"), ["snapshot", "--pid", String(holder)])
        let rows = table.stdout.split(separator: "\n")
        #expect(rows.count == 3 + (table.stdout.contains("note:") ? 1 : 0), "\(table.stdout)")  // header, row, total
        #expect(rows[1].contains(escaped) && !table.stdout.contains("\u{1b}") && !table.stdout.contains("\r"))
        let json = try run(Build.path("closewaitd"), ["snapshot", "--json", "--pid", String(holder)])
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let process = (doc?["processes"] as? [[String: Any]])?.first
        #expect(process?["comm"] as? String == comm)
        #expect(process?["closeWait"] as? Int == 6)

        try waitFor("state file naming the holder") {
            (try? String(contentsOfFile: daemon.statePath, encoding: .utf8))?.contains("\"pid\": \(holder),") ?? false
        }
        let status2 = try run(Build.path("closewaitd"), ["status", "--state-file", daemon.statePath])
        #expect(status2.status == 0)
        #expect(
            status2.stdout.contains(escaped) && !status2.stdout.contains("\u{1b}") && !status2.stdout.contains("\r"))
    }

    /// Row 5: a watchdog of 1 ms does not make the daemon spin.
    @Test func aTinyWatchdogIntervalHasAFloor() throws {
        let daemon = try DaemonProcess(
            config: testConfig(interval: "5s", thresholds: ""), environment: ["WATCHDOG_USEC": "1000"])
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        try daemon.awaitLine("the floor is named") { $0.contains("too short to sample within: sampling every 100ms") }
        let first = daemon.notify.messages.count
        usleep(1_000_000)
        let perSecond = daemon.notify.messages.count - first
        // One STATUS and one WATCHDOG per tick at 10 ticks a second: about 20.
        #expect(perSecond <= 30, "\(perSecond) notifications in 1 s")
        #expect(perSecond >= 4)
    }

    /// Row 6: a manager that never reads its notify socket cannot wedge the loop.
    @Test func aNotifySocketNobodyReadsNeverBlocksTheLoop() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-deaf-\(UUID().uuidString.prefix(8))"
        ).path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        let daemon = try DaemonProcess(
            config: testConfig(interval: "100ms", thresholds: ""), environment: ["NOTIFY_SOCKET": path])
        defer { daemon.stop() }
        try daemon.awaitLine("dropped notifications reported", timeout: 30) {
            $0.contains("STATUS/WATCHDOG messages dropped")
        }
        // Still ticking: the state file keeps being rewritten.
        func ticks() -> Int {
            let text = (try? String(contentsOfFile: daemon.statePath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.contains("\"ticks\"") }
                .flatMap { Int($0.filter(\.isNumber)) } ?? 0
        }
        let before = ticks()
        try waitFor("ticks after the socket filled") { ticks() >= before + 5 }
        daemon.signal(SIGTERM)
        #expect(try daemon.awaitExit(timeout: 5) == 0)
    }

    /// Row 7: a config path that became a FIFO is rejected on reload, at once.
    @Test func reloadingFromAFIFOKeepsTheRunningConfig() throws {
        let daemon = try DaemonProcess(config: testConfig(thresholds: ""))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        unlink(daemon.configPath)
        #expect(mkfifo(daemon.configPath, 0o600) == 0)
        daemon.signal(SIGHUP)
        let rejected = try daemon.awaitLine("rejection") { $0.contains("MESSAGE_ID=\(MessageID.configRejected)") }
        #expect(rejected.contains("is a FIFO, not a regular file"))
        let after = daemon.notify.messages.count
        try daemon.notify.await("ticking after the rejected reload", after: after) { $0.hasPrefix("STATUS=") }
        let check = try run(Build.path("closewaitd"), ["check-config", daemon.configPath], timeout: 10)
        #expect(check.status == 78)
        #expect(check.stderr.contains("is a FIFO, not a regular file"))
    }

    /// Row 1 at reload: a number that trapped the runtime is a rejected config now.
    @Test func reloadingAnOverflowingTimeSpanKeepsRunning() throws {
        let daemon = try DaemonProcess(config: testConfig(thresholds: ""))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        for bad in [
            "[alerts]\ncooldown = \"1e20\"\n", "[daemon]\ninterval = inf\n", "[thresholds]\nage_warning = 1e19\n",
        ] {
            let mark = daemon.log.split(separator: "\n").count
            try daemon.writeConfig(bad)
            daemon.signal(SIGHUP)
            try daemon.awaitLine("rejection of \(bad)") { line in
                line.contains("MESSAGE_ID=\(MessageID.configRejected)")
                    && daemon.log.split(separator: "\n").count > mark
            }
        }
        #expect(daemon.process.isRunning)
    }

    /// Row 9: a reload that ignores an alerting process withdraws the alert without claiming
    /// its sockets are gone.
    @Test func reloadIgnoringAnAlertingProcessSaysSo() throws {
        let leak = try Workload(["--processes", "1", "--v4", "6"])
        defer { leak.stop() }
        let holder = leak.holders[0]
        let daemon = try DaemonProcess(config: testConfig(thresholds: "count_warning = 5\ncount_critical = 1000"))
        defer { daemon.stop() }
        try daemon.awaitLine("alert") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        try daemon.writeConfig(
            testConfig(
                thresholds: "count_warning = 5\ncount_critical = 1000",
                extra: "[[rule]]\nname = \"known-pool\"\nmatch_comm = \"closewaitd-wor*\"\nignore = true\n"))
        daemon.signal(SIGHUP)
        let withdrawn = try daemon.awaitLine("withdrawal") {
            $0.contains("MESSAGE_ID=\(MessageID.recovered)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(withdrawn.contains("is now ignored by rule known-pool; it still holds 6 CLOSE_WAIT sockets"))
        #expect(withdrawn.contains("CLOSEWAIT_COUNT=6 "))
    }

    /// Row 10: --log journal without journald is refused at start.
    @Test func journalLoggingWithoutJournaldIsRefused() throws {
        try #require(access("/run/systemd/journal/socket", F_OK) != 0, "journald listens on this host")
        let daemon = try DaemonProcess(config: testConfig(thresholds: ""), extraArguments: ["--log", "journal"])
        defer { daemon.stop() }
        #expect(try daemon.awaitExit() == 69)
        #expect(daemon.log.contains("journald is not listening"))
    }

    /// Row 10: stderr to a pipe nobody reads any more does not kill the daemon (SIGPIPE).
    @Test func aClosedStderrPipeIsNotFatal() throws {
        let notify = try NotifySocket()
        defer { notify.close() }
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-pipe-\(UUID().uuidString.prefix(8)).toml"
        ).path
        try testConfig(interval: "100ms", thresholds: "count_warning = 1").write(
            toFile: config, atomically: true, encoding: .utf8)
        defer { unlink(config) }
        let leak = try Workload(["--processes", "1", "--v4", "2"])
        defer { leak.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Build.path("closewaitd"))
        process.arguments = ["run", "--config", config, "--log", "stderr", "--state-file", ""]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notify.path
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        try pipe.fileHandleForReading.close()
        try notify.await("READY=1") { $0.contains("READY=1") }
        let mark = notify.messages.count
        try notify.await("ticks after stderr closed", after: mark + 10) { $0.hasPrefix("STATUS=") }
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        try waitFor("exit") { !process.isRunning }
        #expect(process.terminationStatus == 0)
    }

    /// Row 10: a soft fd limit of 8 is raised; a hard limit of 8 is a clear refusal.
    @Test func aLowFdLimitIsRaisedOrRefusedClearly() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-nofile-\(UUID().uuidString.prefix(8)).toml"
        ).path
        try testConfig(thresholds: "").write(toFile: config, atomically: true, encoding: .utf8)
        defer { unlink(config) }
        let bin = Build.path("closewaitd")
        let soft = try run(
            "/bin/sh",
            [
                "-c",
                "ulimit -Sn 8; exec \(bin) run --config \(config) --log stderr --state-file '' & pid=$!; sleep 1; kill -TERM $pid; wait $pid",
            ], timeout: 20)
        #expect(soft.status == 0, "\(soft.stderr)")
        #expect(!soft.stderr.contains("Sampling failed") && !soft.stderr.contains("error:"), "\(soft.stderr)")
        let hard = try run(
            "/bin/sh", ["-c", "ulimit -n 8; exec \(bin) run --config \(config) --log stderr --state-file ''"],
            timeout: 20)
        #expect(hard.status == 69)
        #expect(hard.stderr.contains("the open-file limit is 8 (hard 8)"))
    }

    /// Row 7: a hostile or absurd state file never traps `status`.
    @Test func statusSurvivesAHostileStateFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-state-\(UUID().uuidString.prefix(8)).json"
        ).path
        defer { unlink(path) }
        let documents = [
            """
            {"version": 1, "daemonPid": 1, "updatedAt": 1e300, "interval": 1e300, "ticks": 9223372036854775807,
             "status": "x\\u001b[2J", "total": 1, "hostLevel": "ok",
             "processes": [{"pid": 7, "startTime": 9223372036854775807, "comm": "\\u001b[2J\\r", "unit": "a\\nb",
               "closeWait": 9223372036854775807,
               "growthPerMinute": 1e300, "oldestAgeSeconds": 9223372036854775807, "fdOpen": 9223372036854775807,
               "fdLimit": 9223372036854775807, "topPeer": "\\u001b]0;pwned\\u0007", "level": "warning", "reasons": ["count"]}]}
            """,
            """
            {"version": 1, "daemonPid": 1, "updatedAt": -1e300, "interval": -5, "ticks": 0, "status": "", "total": 0,
             "hostLevel": "ok", "processes": []}
            """,
        ]
        for document in documents {
            try document.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try run(Build.path("closewaitd"), ["status", "--state-file", path])
            #expect(result.status == 0 || result.status == 4, "\(result.status): \(result.stderr)")
            #expect(
                !result.stdout.contains("\u{1b}") && !result.stdout.contains("\r") && !result.stdout.contains("\u{7}"))
        }
        try "{\"version\": 1, \"processes\": [{\"pid\": 1e999}]}".write(toFile: path, atomically: true, encoding: .utf8)
        let invalid = try run(Build.path("closewaitd"), ["status", "--state-file", path])
        #expect(invalid.status == 1)
        #expect(
            invalid.stderr.contains("is not a closewaitd state document: invalid JSON at byte 42: number out of range"),
            "\(invalid.stderr)")
        let result = try run(Build.path("closewaitd"), ["status", "--state-file", "/dev/zero"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("is a character device, not a regular file"))
    }

    /// Issue 9: a cgroup whose pids.max leaves no room for worker threads (a unit's TasksMax
    /// on a big host) does not stop sampling: the walk runs on the threads it could get.
    @Test func aTinyPidsMaxStillSamples() throws {
        let v1 = "/sys/fs/cgroup/pids"
        let base = FileManager.default.fileExists(atPath: v1 + "/cgroup.procs") ? v1 : "/sys/fs/cgroup"
        try #require(FileManager.default.isWritableFile(atPath: base), "no writable pids cgroup hierarchy")
        let cgroup = base + "/closewaitd-test-\(getpid())"
        try #require(
            mkdir(cgroup, 0o755) == 0 && FileManager.default.fileExists(atPath: cgroup + "/pids.max"),
            "cannot make a pids cgroup")
        defer { rmdir(cgroup) }
        try "3\n".write(toFile: cgroup + "/pids.max", atomically: false, encoding: .utf8)
        // Enough processes that the full walk wants several threads.
        let leak = try Workload(["--processes", "1", "--v4", "4", "--noise", "200"])
        defer { leak.stop() }
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "count_warning = 3").replacingOccurrences(
                of: "window = \"10s\"", with: "window = \"10s\"\nfull_scan_interval = \"1s\""),
            launcher: ["/bin/sh", "-c", "echo $$ > \(cgroup)/cgroup.procs && exec \"$0\" \"$@\""])
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        try daemon.awaitLine("alert") { $0.contains("CLOSEWAIT_PID=\(leak.holders[0]) ") }
        // Several full walks (one a second) later, still ticking.
        let mark = daemon.notify.messages.count
        try daemon.notify.await("ticks after a few full walks", timeout: 60, after: mark + 10) {
            $0.hasPrefix("STATUS=")
        }
        let events = (try? String(contentsOfFile: cgroup + "/pids.events", encoding: .utf8)) ?? ""
        print("pids.events under pids.max=3: \(events.trimmingCharacters(in: .whitespacesAndNewlines))")
        daemon.signal(SIGTERM)
        #expect(try daemon.awaitExit() == 0)
    }
}
