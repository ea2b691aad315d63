import CloseWaitCore
import Foundation
import Testing
import WorkloadSupport

/// `[[action]]` in the running daemon against a real leaker: an exec action gets the alert in
/// its environment (and nothing of the daemon's), is journaled after the alert, before and
/// after it runs; a dry run says what it would do and runs nothing; a hanging command is killed
/// at its timeout. Other suites' leakers may run beside this one: the actions match only this
/// test's own copy of the workload, every check is by its holder pid.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct ActionLiveTests {
    @Test func anExecActionRunsOnceJournaledBeforeAndAfter() throws {
        let dir = try actionTestDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/page.sh"
        try "#!/bin/sh\nenv > \(dir)/env.$CLOSEWAIT_PID\necho paged \"$1\"\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        // Its own copy of the workload: other suites' leakers, running beside this one, must not
        // take the running slots (at most 4) from this test's actions.
        let (copy, leak) = try ownLeaker(in: dir, named: "cwactionleak")
        defer { leak.stop() }
        let holder = leak.holders[0]
        let daemon = try actionDaemon(
            """
                    [[action]]
                    name = "page"
                    reason = "count"
                    match_exe = "\(copy)"
                    exec = ["\(script)", "orders"]
                    [[action]]
                    name = "rehearse"
                    level = "warning"
                    match_exe = "\(copy)"
                    exec = ["/bin/false"]
                    dry_run = true
                    [[action]]
                    name = "hang"
                    match_exe = "\(copy)"
                    exec = ["/bin/sleep", "60"]
                    timeout = "300ms"
            """)
        defer { daemon.stop() }
        func mine(_ line: Substring, _ id: String, _ action: String) -> Bool {
            line.contains("MESSAGE_ID=\(id)") && line.contains("CLOSEWAIT_PID=\(holder) ")
                && line.contains("CLOSEWAIT_ACTION=\(action) ")
        }
        let finished = try daemon.awaitLine("the page action's end") { mine($0, MessageID.actionFinished, "page") }
        #expect(finished.contains("action \"page\" for cwactionleak[\(holder)] exited with status 0 after"))
        #expect(
            finished.contains("CLOSEWAIT_ACTION_EXIT_STATUS=0")
                && finished.contains("CLOSEWAIT_ACTION_OUTPUT=paged orders\\n"))
        let lines = daemon.log.split(separator: "\n")
        let alert = lines.firstIndex {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        let started = lines.firstIndex { mine($0, MessageID.actionStarted, "page") }
        let ended = lines.firstIndex { mine($0, MessageID.actionFinished, "page") }
        #expect(alert != nil && started != nil && ended != nil)
        if let alert, let started, let ended { #expect(alert < started && started < ended) }
        #expect(lines[started ?? 0].contains("CLOSEWAIT_ACTION_STATE=started"))

        // Its environment: the alert, escaped; nothing of the daemon's (NOTIFY_SOCKET).
        let env = try String(contentsOfFile: "\(dir)/env.\(holder)", encoding: .utf8).split(separator: "\n")
        #expect(env.contains("CLOSEWAIT_PID=\(holder)") && env.contains("CLOSEWAIT_REASON=count"))
        #expect(env.contains("CLOSEWAIT_ACTION=page") && env.contains("CLOSEWAIT_COMM=cwactionleak"))
        #expect(!env.contains { $0.hasPrefix("NOTIFY_SOCKET=") })

        // The dry run said what it would do and did nothing.
        let rehearsal = try daemon.awaitLine("the dry run") { mine($0, MessageID.actionStarted, "rehearse") }
        #expect(rehearsal.contains("dry run, nothing done") && rehearsal.contains("CLOSEWAIT_ACTION_STATE=dry-run"))
        // The hanging command is killed at its timeout.
        let hang = try daemon.awaitLine("the hanging action killed") { mine($0, MessageID.actionFinished, "hang") }
        #expect(hang.contains("timed out after 300ms and was killed") && hang.contains("CLOSEWAIT_ACTION_TIMEOUT=1"))
        #expect(!daemon.log.split(separator: "\n").contains { mine($0, MessageID.actionFinished, "rehearse") })
        // Once per alert: no second start for this process (its cooldown is 10 minutes).
        #expect(daemon.log.split(separator: "\n").filter { mine($0, MessageID.actionStarted, "page") }.count == 1)
    }
}

/// The daemon with fast ticks, an alert at 5 sockets, no hourly cap that parallel suites'
/// leakers could use up, and the given [[action]] tables.
func actionDaemon(_ actions: String) throws -> DaemonProcess {
    try DaemonProcess(
        config: testConfig(
            thresholds: "count_warning = 5\ncount_critical = 1000", extra: "[actions]\nmax_per_hour = 3600\n" + actions)
    )
}

/// A leaker (one holder, 6 CLOSE_WAIT sockets) run from a copy of the workload binary in `dir`,
/// so an action with `match_exe` set to the copy's path matches only this test's processes.
func ownLeaker(in dir: String, named name: String) throws -> (copy: String, leak: Workload) {
    let copy = dir + "/" + name
    try FileManager.default.copyItem(atPath: Build.path("closewaitd-workload"), toPath: copy)
    return (copy, try Workload(["--processes", "1", "--v4", "6"], executable: copy))
}

/// A fresh directory for one test's scripts and binaries.
func actionTestDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-action-\(UUID().uuidString.prefix(8))")
        .path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// destroy_sockets in the running daemon: the alerted process's CLOSE_WAIT sockets go (ss
/// shows none of its), another process's to the same peer stay. The leaker runs from a copy
/// of the workload binary so the action matches only this test's processes.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct DestroyActionLiveTests {
    @Test func destroySocketsFreesOnlyTheAlertedProcesssSockets() throws {
        let dir = try actionTestDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (copy, leak) = try ownLeaker(in: dir, named: "cwdestroyleak")
        defer { leak.stop() }
        let bystander = try Workload(["--processes", "1", "--v4", "3"])
        defer { bystander.stop() }
        let holder = leak.holders[0]
        let daemon = try actionDaemon(
            """
                    [[action]]
                    name = "free"
                    match_exe = "\(copy)"
                    destroy_sockets = true
            """)
        defer { daemon.stop() }
        let done = try daemon.awaitLine("the destroy action's end") {
            $0.contains("MESSAGE_ID=\(MessageID.actionFinished)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
        }
        #expect(done.contains("destroyed 6 CLOSE_WAIT sockets; their fds stay open until the process closes them"))
        #expect(done.contains("CLOSEWAIT_ACTION_DESTROYED=6") && done.contains("CLOSEWAIT_ACTION_REFUSED=0"))
        let ss = try run("/usr/bin/ss", ["-tanpH", "state", "close-wait"]).stdout
        #expect(!ss.contains("pid=\(holder),"), "\(ss)")
        #expect(ss.components(separatedBy: "pid=\(bystander.holders[0]),").count - 1 == 3, "\(ss)")
        let other = "CLOSEWAIT_PID=\(bystander.holders[0]) "
        #expect(
            !daemon.log.split(separator: "\n").contains { $0.contains(MessageID.actionStarted) && $0.contains(other) })
    }
}
