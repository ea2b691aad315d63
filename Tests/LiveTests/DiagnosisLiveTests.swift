import CloseWaitCore
import Foundation
import Testing
import WorkloadSupport
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Each class of bug reproduced with real sockets on loopback (closewaitd-workload modes), then
/// diagnosed by `closewaitd explain --json` and by the daemon's alert.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct DiagnosisLiveTests {
    func explain(_ pid: Int32, stateFile: String = "/nonexistent/state.json") throws -> [String: Any] {
        let result = try run(Build.path("closewaitd"), ["explain", String(pid), "--json", "--state-file", stateFile])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        return try #require(doc?.first)
    }

    /// The test config with growth alerts on (30/min) and the given count thresholds.
    func growthConfig(count: String) -> String {
        testConfig(thresholds: count + "\ngrowth_warning = 30\ngrowth_critical = 100000")
            .replacingOccurrences(of: "growth_warning = 0\ngrowth_critical = 0\n", with: "")
    }

    func kind(_ report: [String: Any]) -> String? { (report["diagnosis"] as? [String: Any])?["kind"] as? String }
    func firstPeer(_ report: [String: Any]) -> [String: Any] { (report["peers"] as? [[String: Any]])?.first ?? [:] }

    @Test func responsesLeftUnreadAreNamedWithoutTheDaemon() throws {
        let w = try Workload(["--processes", "1", "--v4", "6", "--unread-bytes", "200"])
        defer { w.stop() }
        let report = try explain(w.holders[0])
        #expect(kind(report) == "unread-responses")
        let peer = firstPeer(report)
        #expect(peer["peer"] as? String == "127.0.0.1:\(w.port4)")
        #expect(peer["closeWait"] as? Int == 6)
        #expect(peer["unread"] as? Int == 6)
        #expect(peer["unreadBytes"] as? Int == 1200)
        #expect(peer["established"] as? Int == 0)
        #expect(report["tracked"] as? Bool == false)
        #expect((report["ss"] as? [String])?.first == "ss -tnpie state close-wait dst '127.0.0.1:\(w.port4)'")
        // The text form leads with the class and what to change.
        let text = try run(Build.path("closewaitd"), ["explain", String(w.holders[0]), "--state-file", "/nonexistent"])
        #expect(
            text.stdout.contains(
                "Diagnosis: unread-responses\n  Responses not read to the end: 6 of 6 CLOSE_WAIT sockets still hold 1200 unread bytes"
            ))
        // The daemon's alert names it at once: this class needs no history.
        let daemon = try DaemonProcess(config: testConfig(thresholds: "count_warning = 5\ncount_critical = 1000"))
        defer { daemon.stop() }
        let alert = try daemon.awaitLine("count alert for \(w.holders[0])") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(w.holders[0]) ")
        }
        #expect(alert.contains("CLOSEWAIT_DIAGNOSIS=unread-responses"), "\(alert)")
        #expect(
            alert.contains("warning: closewaitd-work[\(w.holders[0])]: Responses not read to the end: 6 of 6"),
            "\(alert)")
    }

    /// A process with CLOSE_WAIT sockets to five peers: the kernel accepts the look's peer
    /// filter (it refused one for three peers or more) and the ESTABLISHED side is known.
    @Test func aProcessWithFivePeersIsLookedAt() throws {
        let script = """
            import json, os, sys, time
            sys.path.insert(0, \(String(reflecting: ClientCorpusLiveTests.corpus + "/../redteam")))
            from loopback import close_wait
            kept = [close_wait(3) for _ in range(5)]
            print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
            time.sleep(60)
            """
        let leaker = try ReadyProcess("/usr/bin/python3", ["-c", script])
        defer { leaker.stop() }
        let pid = Int32(try #require(leaker.ready["pid"] as? Int))
        let result = try run(
            Build.path("closewaitd"), ["explain", String(pid), "--json", "--state-file", "/nonexistent"])
        #expect(!result.stderr.contains("cannot look closer"), "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        let peers = (doc?.first?["peers"] as? [[String: Any]]) ?? []
        #expect(peers.count == 5)
        #expect(peers.allSatisfy { $0["established"] as? Int == 0 && $0["closeWait"] as? Int == 3 }, "\(peers)")
    }

    @Test func explainEscapesAHostileComm() throws {
        // ESC [ 2 J (clear screen) and a carriage return as the process's name.
        let w = try Workload(["--processes", "1", "--v4", "4", "--comm-hex", "1b5b324a0d78"])
        defer { w.stop() }
        let text = try run(Build.path("closewaitd"), ["explain", String(w.holders[0]), "--state-file", "/nonexistent"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(
            !text.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "\(text.stdout.debugDescription)")
        #expect(text.stdout.hasPrefix("\\x1b[2J\\rx[\(w.holders[0])]"), "\(text.stdout.prefix(80).debugDescription)")
        let json = try explain(w.holders[0])
        #expect((json["process"] as? [String: Any])?["comm"] as? String == "\u{1b}[2J\rx")
    }

    @Test func aClientThatAbandonsConnectionsIsDiagnosedInTheAlert() throws {
        let w = try Workload(["--processes", "1", "--v4", "3", "--grow-per-second", "3"])
        defer { w.stop() }
        let holder = w.holders[0]
        let daemon = try DaemonProcess(config: growthConfig(count: "count_warning = 1000\ncount_critical = 2000"))
        defer { daemon.stop() }
        let alert = try daemon.awaitLine("growth alert for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
                && $0.contains("CLOSEWAIT_REASON=growth")
        }
        #expect(alert.contains("CLOSEWAIT_DIAGNOSIS=abandoned-connections"), "\(alert)")
        #expect(
            alert.contains("warning: closewaitd-work[\(holder)]: Abandoned connections: a steady climb"), "\(alert)")
        #expect(alert.contains("CLOSEWAIT_EVIDENCE="))
        #expect(alert.contains("To fix: Reuse one client"))
        try waitFor("the state file's diagnosis") {
            (try? String(contentsOfFile: daemon.statePath, encoding: .utf8))?.contains(
                "\"diagnosis\": \"abandoned-connections\"") ?? false
        }
        let report = try explain(holder, stateFile: daemon.statePath)
        #expect(kind(report) == "abandoned-connections")
        #expect(report["pattern"] as? String == "steady")
        #expect(report["tracked"] as? Bool == true)
        #expect(firstPeer(report)["established"] as? Int == 0)
        #expect((report["ageHistogram"] as? [String: Int])?["<1min"] ?? 0 > 0)
        let status = try run(Build.path("closewaitd"), ["status", "--state-file", daemon.statePath])
        #expect(
            status.stdout.contains("\(holder) closewaitd-work: abandoned-connections — Abandoned connections"),
            "\(status.stdout)")
    }

    @Test func aBoundedPoolIsAnIdlePoolNeverALeak() throws {
        // Eight connections the server closed, turning over twice a second: the count stays put.
        let w = try Workload(["--processes", "1", "--v4", "8", "--rotate-per-second", "2"])
        defer { w.stop() }
        let holder = w.holders[0]
        // Reminders every 6 s: the first after half the window (5 s) carries the pattern.
        let daemon = try DaemonProcess(
            config: growthConfig(count: "count_warning = 5\ncount_critical = 1000")
                .replacingOccurrences(of: "reminder = \"0\"", with: "reminder = \"6s\""))
        defer { daemon.stop() }
        try daemon.awaitLine("count alert for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        let reminder = try daemon.awaitLine("a reminder for \(holder)") {
            $0.contains("MESSAGE_ID=\(MessageID.reminder)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(reminder.contains("CLOSEWAIT_DIAGNOSIS=idle-pool"), "\(reminder)")
        #expect(reminder.contains("Idle pool keeping closed connections: the count holds flat at 8"), "\(reminder)")
        // Once half the window has passed the daemon looks again and sees the plateau.
        try waitFor("the state file's idle-pool diagnosis", timeout: 40) {
            (try? String(contentsOfFile: daemon.statePath, encoding: .utf8))?.contains("\"diagnosis\": \"idle-pool\"")
                ?? false
        }
        let report = try explain(holder, stateFile: daemon.statePath)
        #expect(kind(report) == "idle-pool")
        #expect(report["pattern"] as? String == "plateau")
        // Its own lines only: the daemon watches the whole host, where other suites leak at once.
        let mine = daemon.log.split(separator: "\n").filter { $0.contains("CLOSEWAIT_PID=\(holder) ") }
        #expect(
            !mine.contains { $0.contains("CLOSEWAIT_REASON=growth") },
            "a pool turning over must not read as a growing leak")
        #expect(!mine.contains { $0.contains("CLOSEWAIT_DIAGNOSIS=abandoned-connections") })
    }
}

/// The shell completions `make install` generates from the argument parser.
@Suite(.enabled(if: Live.available, Live.reason)) struct CompletionTests {
    @Test(arguments: ["bash", "zsh"])
    func completionScriptsKnowEverySubcommand(shell: String) throws {
        let script = try run(Build.path("closewaitd"), ["--generate-completion-script", shell])
        #expect(script.status == 0)
        for command in ["snapshot", "run", "status", "explain", "check-config"] {
            #expect(script.stdout.contains(command), "\(command)")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cw-completion.\(shell)").path
        try script.stdout.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        if shell == "bash" {
            // It loads in a real bash and registers the completion function.
            let loaded = try run("/bin/bash", ["-c", "source \(file) && complete -p closewaitd"])
            #expect(loaded.status == 0 && loaded.stdout.contains("closewaitd"), "\(loaded.stderr)")
        } else if FileManager.default.isExecutableFile(atPath: "/usr/bin/zsh") {
            #expect(try run("/usr/bin/zsh", ["-n", file]).status == 0)
        }
    }
}
