import CloseWaitCore
import Foundation
import Testing

/// Issue 9: a process is (pid, start time). In a fresh pid namespace (so the test chooses the
/// next pid through /proc/sys/kernel/ns_last_pid), holder `alpha` is tracked by the daemon and
/// killed, and holder `bravo` is started with alpha's pid: the daemon must report bravo under
/// its own comm and start time, and alert on it, long before its next full walk.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct PidReuseLiveTests {
    static let holder = """
        import os, socket, sys, time
        name, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        open("/proc/self/comm", "w").write(name)
        held = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            held.append(s)
        # The peer shuts down its side at once: wait until each socket has seen the FIN.
        for s in held:
            s.settimeout(10)
            assert s.recv(1) == b""
        print("ready", flush=True)
        time.sleep(120)
        """

    @Test func aReusedPidIsANewProcess() throws {
        try #require(getuid() == 0, "needs root for a pid namespace")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-pidreuse-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.holder.write(toFile: dir + "/holder.py", atomically: true, encoding: .utf8)
        // A full walk only every hour: only the incremental path can get this right.
        let script =
            try Self.prelude(dir, interval: "2s") + """
                # charlie stays all along, so the index always has sockets to keep (an empty sample resets it).
                /usr/bin/python3 holder.py charlie $port 2 > charlie.out &
                charlie=$!
                wait_for 'grep -q ready charlie.out' charlie
                /usr/bin/python3 holder.py alpha $port 3 > alpha.out &
                alpha=$!
                wait_for 'grep -q ready alpha.out' alpha
                wait_for "grep -q '\\"comm\\": \\"alpha\\"' state.json 2>/dev/null" alpha-tracked
                echo "ALPHA $alpha $(cut -d' ' -f22 /proc/$alpha/stat)"
                # Right after a tick, alpha dies and bravo takes its pid before the next one (2 s later):
                # the daemon's next tick finds alpha's links gone and bravo's sockets under the same pid.
                ticks=$(grep '"ticks"' state.json)
                wait_for "! grep -q '$ticks' state.json" next-tick
                kill -9 $alpha; wait $alpha 2>/dev/null
                for attempt in 1 2 3 4 5; do
                    echo $((alpha - 1)) > /proc/sys/kernel/ns_last_pid
                    /usr/bin/python3 holder.py bravo $port 12 > bravo.out &
                    bravo=$!
                    [ $bravo -eq $alpha ] && break
                    kill -9 $bravo; wait $bravo 2>/dev/null
                done
                wait_for 'grep -q ready bravo.out' bravo
                echo "BRAVO $bravo $(cut -d' ' -f22 /proc/$bravo/stat)"
                wait_for "grep -q 'CLOSEWAIT_PID=$bravo ' daemon.log" bravo-alert
                cat state.json
                grep "CLOSEWAIT_PID=$bravo " daemon.log
                kill $daemon; wait $daemon
                echo "DAEMON-EXIT $?"
                kill -9 $bravo $charlie 2>/dev/null
                """
        let result = try run("/usr/bin/unshare", ["-p", "-f", "--mount-proc", "/bin/sh", "-c", script], timeout: 90)
        let lines = result.stdout.split(separator: "\n")
        let alpha = lines.first { $0.hasPrefix("ALPHA ") }?.split(separator: " ")
        let bravo = lines.first { $0.hasPrefix("BRAVO ") }?.split(separator: " ")
        try #require(alpha != nil && bravo != nil, "\(result.stdout)\n\(result.stderr)")
        // The namespace gave bravo alpha's pid, with a later start time.
        #expect(alpha![1] == bravo![1], "pid not reused: \(result.stdout)")
        #expect(alpha![2] != bravo![2] || alpha![1] != bravo![1])
        let pid = bravo![1], start = bravo![2]
        let state = try StateDocument.decode(Array(Self.stateText(result.stdout).utf8))
        let row = state.processes.first { String($0.pid) == pid }
        #expect(row?.comm == "bravo")
        #expect(row.map { String($0.startTime) } == String(start))
        #expect(row?.closeWait == 12)
        let alert = lines.first {
            $0.contains("CLOSEWAIT_PID=\(pid) ") && $0.contains("MESSAGE_ID=\(MessageID.crossed)")
        }
        #expect(alert?.contains("bravo[\(pid)] holds 12 CLOSE_WAIT sockets") == true, "\(result.stdout)")
        #expect(alert?.contains("CLOSEWAIT_START_TIME=\(start) ") == true)
        #expect(lines.contains("DAEMON-EXIT 0"))
    }

    /// The start of a script run in a fresh pid namespace: the config (a full walk only every
    /// hour) written to `dir`, `wait_for` (a deadline, no guessed sleeps), a loopback peer
    /// (`$port`) and the daemon (`$daemon`) writing `state.json`.
    static func prelude(_ dir: String, interval: String, fdCount: String = "size") throws -> String {
        try testConfig(interval: interval, thresholds: "count_warning = 10\ncount_critical = 1000", extra: "")
            .replacingOccurrences(of: "window = \"10s\"", with: "window = \"10s\"\nfull_scan_interval = \"1h\"")
            .write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        let bin = Build.binDirectory
        return """
            set -u
            cd \(dir)
            wait_for() { i=0; while ! eval "$1"; do i=$((i+1)); [ $i -gt 1200 ] && { echo "TIMEOUT $2"; exit 1; }; sleep 0.05; done; }
            \(bin)/closewaitd-workload --processes 0 --duration 120 > peer.json &
            wait_for 'grep -q ready peer.json' peer
            port=$(sed 's/.*"port4":\\([0-9]*\\).*/\\1/' peer.json)
            CLOSEWAITD_FD_COUNT=\(fdCount) \(bin)/closewaitd run --config config.toml --log stderr --state-file state.json 2> daemon.log &
            daemon=$!

            """
    }

    /// The pretty-printed state document within the script's output.
    static func stateText(_ output: String) -> String {
        var text = ""
        var inside = false
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "{" { inside = true }
            if inside { text += line + "\n" }
            if line == "}" { break }
        }
        return text
    }

    /// Issue 17, row 12: the holder forks a child that keeps the sockets and exits; its pid
    /// is reused at once (`sleep`). With a full walk only every hour, the daemon must name the
    /// child, never the newcomer, within a few ticks.
    static let forker = """
        import os, socket, sys, time
        port, count = int(sys.argv[1]), int(sys.argv[2])
        open("/proc/self/comm", "w").write("alpha")
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for s in held:
            s.settimeout(10)
            assert s.recv(1) == b""
        child = os.fork()
        if child == 0:
            open("/proc/self/comm", "w").write("keeper")
            time.sleep(120)
            os._exit(0)
        print("ready", child, flush=True)
        time.sleep(120)
        """

    /// On both fd-count paths (`CLOSEWAITD_FD_COUNT`, as on kernels before 6.2).
    @Test(arguments: ["size", "readdir"])
    func aHolderWhosePidIsReusedIsNeverTheNewcomer(fdCount: String) throws {
        try #require(getuid() == 0, "needs root for a pid namespace")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-handover-\(fdCount)-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.forker.write(toFile: dir + "/forker.py", atomically: true, encoding: .utf8)
        let script =
            try Self.prelude(dir, interval: "1s", fdCount: fdCount) + """
                /usr/bin/python3 forker.py $port 12 > forker.out &
                alpha=$!
                wait_for 'grep -q ready forker.out' forker
                keeper=$(cut -d' ' -f2 forker.out)
                wait_for "grep -q '\\"comm\\": \\"alpha\\"' state.json 2>/dev/null" alpha-tracked
                ticks=$(grep '"ticks"' state.json)
                wait_for "! grep -q '$ticks' state.json" next-tick
                kill -9 $alpha; wait $alpha 2>/dev/null
                for attempt in 1 2 3 4 5; do
                    echo $((alpha - 1)) > /proc/sys/kernel/ns_last_pid
                    sleep 60 &
                    newcomer=$!
                    [ $newcomer -eq $alpha ] && break
                    kill -9 $newcomer; wait $newcomer 2>/dev/null
                done
                echo "ALPHA $alpha NEWCOMER $newcomer KEEPER $keeper"
                wait_for "grep -q '\\"comm\\": \\"keeper\\"' state.json" keeper-named
                sleep 2.5
                cat state.json
                kill $daemon; wait $daemon
                kill -9 $newcomer $keeper 2>/dev/null
                """
        let result = try run("/usr/bin/unshare", ["-p", "-f", "--mount-proc", "/bin/sh", "-c", script], timeout: 240)
        let ids = result.stdout.split(separator: "\n").first { $0.hasPrefix("ALPHA ") }?.split(separator: " ")
        try #require(ids != nil && ids!.count == 6, "\(result.stdout)\n\(result.stderr)")
        #expect(ids![1] == ids![3], "pid not reused: \(result.stdout)")
        #expect(!result.stdout.contains("TIMEOUT"), "\(result.stdout)")
        let state = try StateDocument.decode(Array(Self.stateText(result.stdout).utf8))
        #expect(
            state.processes.contains { $0.comm == "keeper" && String($0.pid) == String(ids![5]) && $0.closeWait == 12 })
        #expect(
            !state.processes.contains { $0.comm == "sleep" || String($0.pid) == String(ids![3]) },
            "the newcomer named as the holder")
    }
}
