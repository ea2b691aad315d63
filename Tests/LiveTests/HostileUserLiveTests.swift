import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

/// A helper process that prints one JSON line when ready (or just "ready"); ended by pid.
final class ReadyProcess {
    let process = Process()
    private(set) var ready: [String: Any] = [:]
    private let stdin = Pipe()
    private let out = Pipe()
    private var pending: [UInt8] = []

    init(_ executable: String, _ arguments: [String], timeout: Double = 30) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        do {
            ready = try nextObject(timeout: timeout)
        } catch {
            stop()
            throw TimedOut(description: "\(executable) not ready: \(error)")
        }
    }

    /// Sends one line to its standard input.
    func send(_ line: String) {
        stdin.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// The next line it prints, as a JSON object (empty when the line is not one).
    func nextObject(timeout: Double = 20) throws -> [String: Any] {
        let line = try readLine(out.fileHandleForReading.fileDescriptor, buffer: &pending, timeout: timeout)
        return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] ?? [:]
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Issue 17: what any local user can do to the monitor, each row a test at a size that fits
/// `make check` (the full sizes are `make redteam`).
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct HostileUserLiveTests {
    /// The helpers (Tests/redteam), copied where `nobody` can read them: a checkout may sit in
    /// a directory only its owner can enter (a `mktemp -d` clone is 0700).
    static let redteam: String = {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("redteam").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-redteam-\(UUID().uuidString.prefix(8))"
        ).path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: source)) ?? [] where name.hasSuffix(".py") {
            try? FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
            chmod(dir + "/" + name, 0o755)
        }
        return dir
    }()

    /// Row 1: a thread unshares a network namespace and leaks there while its leader stays in
    /// the host's: found through the thread's task directory.
    @Test func aThreadsOwnNetworkNamespaceIsSampled() throws {
        try #require(getuid() == 0, "unshare(CLONE_NEWNET) in a thread needs root here")
        let leaker = try ReadyProcess("/usr/bin/python3", [Self.redteam + "/thread-netns-leaker.py", "7", "120"])
        defer { leaker.stop() }
        let pid = try #require(leaker.ready["pid"] as? Int)
        let netns = try #require((leaker.ready["netns"] as? NSNumber)?.uint64Value)
        #expect(NamespaceLiveTests.namespace(of: Int32(pid)) != netns, "the leader must stay in the host's namespace")
        let result = try run(Build.path("closewaitd"), ["snapshot", "--json", "--pid", String(pid)])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let entry = ((doc?["processes"] as? [[String: Any]]) ?? []).first { $0["pid"] as? Int == pid }
        #expect(entry?["closeWait"] as? Int == 7, "\(result.stdout)")
        let peers = (entry?["peers"] as? [[String: Any]]) ?? []
        #expect(peers.allSatisfy { ($0["netns"] as? NSNumber)?.uint64Value == netns }, "\(peers)")
    }

    /// Row 1, "moved": the process leaks in its namespace, then moves to a fresh one; the
    /// first lives on only through its sockets. Its last CLOSE_WAIT sockets stay counted and
    /// attributed while held, and the namespace is said to have no task left.
    @Test func aNamespaceWithNoTaskLeftIsStillCounted() throws {
        try #require(getuid() == 0, "unshare(CLONE_NEWNET) needs root here")
        let leaker = try ReadyProcess("/usr/bin/python3", [Self.redteam + "/moved-netns-leaker.py", "9", "120"])
        defer { leaker.stop() }
        let pid = try #require((leaker.ready["pid"] as? Int).map(Int32.init))
        let first = try #require((leaker.ready["netns"] as? NSNumber)?.uint64Value)
        var collector = SnapshotCollector(source: .netlink, fullScanInterval: 3600)
        collector.sampler.namespaces = NetNamespaces()
        let before = try collector.collect(states: [.closeWait], now: 1, keepSockets: false)
        #expect(before.snapshot.processes.first { $0.details.pid == pid }?.socketCount == 9)
        leaker.send("move")
        let moved = try leaker.nextObject()
        #expect((moved["netns"] as? NSNumber)?.uint64Value != first)
        collector.sampler.namespaces?.rescan(now: 2)
        let after = try collector.collect(states: [.closeWait], now: 3, keepSockets: false)
        let row = after.snapshot.processes.first { $0.details.pid == pid }
        #expect(row?.socketCount == 9, "the sockets of a namespace with no task left went missing")
        #expect(row?.peers.allSatisfy { $0.netns == first } == true)
        #expect(after.coverage.orphaned[first] == 9, "\(after.coverage)")
        #expect(after.coverage.summary?.contains("1 with no task left") == true)
        // Once nobody holds them, they are forgotten.
        leaker.stop()
        var now = 4.0
        try waitFor("the sockets closed with the process", timeout: 10) {
            now += 1
            return try collector.collect(states: [.closeWait], now: now, keepSockets: false).coverage.orphaned.isEmpty
        }
    }

    /// Row 3 at a small size: a namespace's table larger than the byte limit is read in
    /// chunks up to the limit, reported as cut, and what was read is kept.
    @Test func aTableOverTheByteLimitIsCutAndSaid() throws {
        try #require(getuid() == 0, "unshare --net needs root")
        let w = try Workload(["--processes", "1", "--v4", "120"], launcher: NamespaceLiveTests.unshare)
        defer { w.stop() }
        var sampler = KernelSampler(choice: .netlink)
        sampler.namespaces = NetNamespaces()
        let ns = try #require(sampler.namespaces?.namespace(of: w.holders[0]))
        func inNamespace(_ s: KernelSampler.Sample) -> Int { s.records.filter { s.foreign[$0.inode] == ns }.count }
        let whole = try sampler.sample(states: [.closeWait], now: 1)
        #expect(inNamespace(whole) == 120)
        #expect(whole.coverage.cut.isEmpty && whole.coverage.failed.isEmpty)
        // The limit falls inside the table's last CLOSE_WAIT line (the order is the kernel's
        // hash order, stable while the sockets are): some are before it, that one is not.
        let table = try ProcFS(root: "/proc/\(w.holders[0])").read("net/tcp")
        var offset = 0, lastCloseWait = 0
        for line in table.split(separator: 0x0a, omittingEmptySubsequences: false) {
            let fields = line.split(separator: 0x20)
            if fields.count > 3, fields[3].elementsEqual("08".utf8) { lastCloseWait = offset }
            offset += line.count + 1
        }
        sampler.foreignByteLimit = lastCloseWait + 10
        sampler.foreignRecheck = 0
        let cut = try sampler.sample(states: [.closeWait], now: 2)
        #expect(cut.coverage.cut[ns]?.contains("larger than") == true, "\(cut.coverage)")
        #expect(
            inNamespace(cut) > 0 && inNamespace(cut) < 120,
            "\(inNamespace(cut)) \(cut.records.count) \(cut.foreign.count)")
    }

    /// Row 4: past the tick's budget for namespaces, the rest are not read: counted as never
    /// read (no table yet) or stale (the last table stands in), and read first next time.
    @Test func namespacesPastTheBudgetAreCountedAndTakenInTurn() throws {
        try #require(getuid() == 0, "unshare --net needs root")
        let a = try Workload(["--processes", "1", "--v4", "3"], launcher: NamespaceLiveTests.unshare)
        defer { a.stop() }
        let b = try Workload(["--processes", "1", "--v4", "4"], launcher: NamespaceLiveTests.unshare)
        defer { b.stop() }
        var sampler = KernelSampler(choice: .netlink)
        sampler.namespaces = NetNamespaces()
        sampler.foreignRecheck = 0
        let nsA = try #require(sampler.namespaces?.namespace(of: a.holders[0]))
        let nsB = try #require(sampler.namespaces?.namespace(of: b.holders[0]))
        func count(_ s: KernelSampler.Sample, _ ns: UInt64) -> Int {
            s.records.filter { s.foreign[$0.inode] == ns }.count
        }
        sampler.foreignBudget = 0
        let none = try sampler.sample(states: [.closeWait], now: 1)
        #expect(none.coverage.unread == none.coverage.namespaces && none.coverage.namespaces >= 2)
        #expect(count(none, nsA) == 0 && count(none, nsB) == 0)
        #expect(none.coverage.summary?.contains("never read yet") == true)
        sampler.foreignBudget = 10
        let all = try sampler.sample(states: [.closeWait], now: 2)
        #expect(count(all, nsA) == 3 && count(all, nsB) == 4)
        #expect(all.coverage.incomplete == 0, "\(all.coverage)")
        sampler.foreignBudget = 0
        let stale = try sampler.sample(states: [.closeWait], now: 3)
        #expect(count(stale, nsA) == 3 && count(stale, nsB) == 4, "the last tables stand in")
        #expect(stale.coverage.stale == stale.coverage.namespaces)
    }

    /// Rows 8 and 11: with 300 silent connections (each closed one replaced at once) or 400
    /// slow readers from an unprivileged local user, a well-behaved scrape is answered within
    /// a second.
    @Test(arguments: [("silent", 300), ("slow", 400)])
    func aScrapeIsAnsweredUnderAttack(mode: String, connections: Int) throws {
        try #require(getuid() == 0, "setpriv to nobody needs root")
        // A page of some size (row 11 needs one larger than a socket's send buffer: 60
        // processes' series are ~60 KB), as a busy host has.
        let leak = try Workload(["--processes", "60", "--v4", "2"])
        defer { leak.stop() }
        let port = freeLoopbackPort()
        let daemon = try DaemonProcess(
            config: testConfig(
                interval: "500ms", thresholds: "count_warning = 1",
                extra: "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n"))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        try waitFor("a page with every leaker", timeout: 30) {
            ((try? LoopbackClient.get(port: port)) ?? "").utf8.count > 40_000
        }
        let attack = try ReadyProcess(
            "/usr/bin/setpriv",
            [
                "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
                Self.redteam + "/metrics-attack.py", mode, String(port), String(connections), "60",
            ])
        defer { attack.stop() }
        // Let the attack reach its steady state (the server closing, the attacker replacing).
        let settle = Date()
        try waitFor("the attack under way", timeout: 10) { Date().timeIntervalSince(settle) >= 3 }
        var times = [Double]()
        for _ in 0..<5 {
            let start = Date()
            let page = try LoopbackClient.get(port: port)
            times.append(Date().timeIntervalSince(start))
            #expect(
                page.hasPrefix("HTTP/1.1 200 OK") && page.contains("closewaitd_close_wait_sockets "),
                "\(page.prefix(200))")
        }
        #expect(times.filter { $0 < 1 }.count >= 4, "scrape times under attack: \(times)")
        #expect(times.allSatisfy { $0 < 3 }, "scrape times under attack: \(times)")
        #expect(attack.process.isRunning, "the attack ran throughout")
    }

    static let asNobody = [
        "/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
    ]

    /// Row 2 at a small size: forked children sharing their parent's sockets are one row,
    /// tracked and alerted once.
    @Test func forkedSharersAreTrackedAsOne() throws {
        try #require(getuid() == 0, "setpriv to nobody needs root")
        let sharers = try ReadyProcess(
            Self.asNobody[0],
            Array(Self.asNobody.dropFirst()) + [Self.redteam + "/fork-sharers.py", "30", "200", "120"])
        defer { sharers.stop() }
        let pid = try #require(sharers.ready["pid"] as? Int)
        let daemon = try DaemonProcess(config: testConfig(interval: "500ms", thresholds: "count_warning = 10"))
        defer { daemon.stop() }
        let alert = try daemon.awaitLine("the alert for the shared set") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(pid) ")
        }
        #expect(alert.contains("its sockets shared by 200 other processes ("), "\(alert.prefix(300))")
        let status = try daemon.notify.await("STATUS with one process") {
            $0.contains("STATUS=1 process with CLOSE_WAIT")
        }
        #expect(status.contains("max python3[\(pid)] 30"))
        // Alerts for its peer only: the daemon watches the whole host, where other suites leak
        // at the same time; a child alerted on its own would name the same peer.
        let peer = try #require(alert.split(separator: " ").first { $0.hasPrefix("CLOSEWAIT_TOP_PEER=") })
        let crossed = daemon.log.split(separator: "\n").filter {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_REASON=count")
                && $0.contains(" \(peer) ")
        }
        #expect(crossed.count == 1, "one alert for the set, not one per child: \(crossed.count)")
    }

    /// Row 7: a leaker that forks and exits every 3 s, its child inheriting the sockets, is
    /// one leak: alerted once, never "recovered" on a hand-over, its oldest socket's age kept.
    /// On both fd-count paths: a zombie's empty fd directory reads as "not cheap" on the
    /// readdir path (kernels before 6.2), so its exit must be seen another way.
    @Test(arguments: ["size", "readdir"])
    func aLeakerThatForksAndExitsIsOneLeak(fdCount: String) throws {
        try #require(getuid() == 0, "setpriv to nobody needs root")
        let pidfile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-chain-\(fdCount)-\(getpid()).pid"
        ).path
        let chain = try ReadyProcess(
            Self.asNobody[0],
            Array(Self.asNobody.dropFirst()) + [
                Self.redteam + "/fork-sharers.py", "12", "0", "40",
                "--exit-every", "3", "--pidfile", pidfile,
            ])
        defer {
            // The holder of the moment, by pid (each generation writes its own).
            if let text = try? String(contentsOfFile: pidfile, encoding: .utf8), let pid = Int32(text) {
                kill(pid, SIGKILL)
            }
            unlink(pidfile)
            chain.stop()
        }
        let daemon = try DaemonProcess(
            config: testConfig(interval: "500ms", hold: "3", thresholds: "count_warning = 10"),
            environment: ["CLOSEWAITD_FD_COUNT": fdCount])
        defer { daemon.stop() }
        // The chain's peer, from the holder of the moment (its pidfile) and ss: other suites'
        // python3 leakers run at the same time, and only the chain's lines count here.
        var peerAddress = ""
        try waitFor("the chain's peer", timeout: 20) {
            guard let text = try? String(contentsOfFile: pidfile, encoding: .utf8), let holder = Int32(text) else {
                return false
            }
            let out = try run("/usr/bin/ss", ["-tnpH", "state", "close-wait"]).stdout
            let line = out.split(separator: "\n").first { $0.contains("pid=\(holder),") }
            peerAddress = line.map { String($0.split(separator: " ", omittingEmptySubsequences: true)[3]) } ?? ""
            return !peerAddress.isEmpty
        }
        let peer = "CLOSEWAIT_TOP_PEER=" + peerAddress
        _ = try daemon.awaitLine("the count alert") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_COMM=python3 ")
                && $0.contains(" \(peer) ")
        }
        // Three hand-overs later, the history is the sockets': the oldest is older than a generation.
        let start = Date()
        try waitFor("ten seconds of hand-overs", timeout: 20) { Date().timeIntervalSince(start) >= 10 }
        let lines = daemon.log.split(separator: "\n").filter {
            $0.contains("CLOSEWAIT_COMM=python3 ") && $0.contains(" \(peer) ")
        }
        #expect(
            lines.filter { $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_REASON=count") }
                .count == 1,
            "\(lines.map { $0.prefix(160) })")
        #expect(!lines.contains { $0.contains("MESSAGE_ID=\(MessageID.recovered)") }, "a hand-over is not a recovery")
        let state = try StateDocument.decode(Array(try String(contentsOfFile: daemon.statePath, encoding: .utf8).utf8))
        let row = try #require(
            state.processes.first { $0.comm == "python3" && ($0.topPeer ?? "").hasPrefix(peerAddress + "×") })
        #expect(row.oldestAgeSeconds >= 8, "age restarted with a pid: \(row.oldestAgeSeconds)")
        #expect(row.level == "warning")
    }

    /// Rows 10 and 13 at a small size: sockets parked in a unix socket's queue (held by no
    /// process) raise the host-wide unowned alert and show in STATUS.
    @Test func socketsHeldByNoProcessAreSaid() throws {
        try #require(getuid() == 0, "setpriv to nobody needs root")
        let parked = try ReadyProcess(
            Self.asNobody[0], Array(Self.asNobody.dropFirst()) + [Self.redteam + "/parked-sockets.py", "80", "120"])
        defer { parked.stop() }
        let daemon = try DaemonProcess(
            config: testConfig(interval: "500ms", thresholds: "unowned_warning = 50\nunowned_critical = 0"))
        defer { daemon.stop() }
        let alert = try daemon.awaitLine("the unowned alert") { $0.contains("MESSAGE_ID=\(MessageID.unownedSockets)") }
        #expect(alert.contains("80 CLOSE_WAIT sockets are held by no process's fd table"), "\(alert.prefix(300))")
        _ = try daemon.notify.await("STATUS saying so") { $0.contains("80 sockets held by no process") }
    }

    /// Row 6: a user's delegated subtree with cgroups named like a system unit and a docker
    /// container: shown as the user's, and the README's rules do not silence them.
    @Test func aUsersLookAlikeUnitsAndContainersAreTheUsers() throws {
        try #require(getuid() == 0, "making cgroups needs root")
        let id = String(repeating: "ab12", count: 16)
        let user = "user.slice/user-65534.slice/user@65534.service/app.slice"
        let w = try Workload(["--processes", "2", "--v4", "6"])
        defer { w.stop() }
        var made = [String]()
        defer {
            for dir in made.reversed() {
                let procs = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
                let root = dir.hasPrefix("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup/systemd"
                for pid in procs.split(separator: "\n") {
                    try? String(pid).write(toFile: root + "/cgroup.procs", atomically: false, encoding: .utf8)
                }
                rmdir(dir)
            }
        }
        for (holder, leaf) in zip(w.holders, ["legacy-proxy.service", "docker-\(id).scope"]) {
            for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"] {
                let dir = "\(root)/\(user)/\(leaf)"
                var path = root
                for component in (user + "/" + leaf).split(separator: "/") {
                    path += "/" + component
                    if mkdir(path, 0o755) == 0 { made.append(path) }
                }
                try String(holder).write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8)
            }
        }
        let snap = try run(Build.path("closewaitd"), ["snapshot", "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(snap.stdout.utf8)) as? [String: Any]
        let rows = (doc?["processes"] as? [[String: Any]]) ?? []
        let proxy = rows.first { $0["pid"] as? Int == Int(w.holders[0]) }
        #expect(proxy?["unit"] as? String == "user@65534.service: legacy-proxy.service", "\(proxy ?? [:])")
        let docker = rows.first { $0["pid"] as? Int == Int(w.holders[1]) }
        let container = docker?["container"] as? [String: Any]
        #expect(
            container?["runtime"] as? String == "docker"
                && container?["userManager"] as? String == "user@65534.service", "\(docker ?? [:])")
        // The README's rules, written for the system's unit and containers, leave them alerting.
        let rules = """
            [[rule]]
            name = "bounded-pool"
            match_unit = "legacy-proxy.service"
            ignore = true

            [[rule]]
            name = "docker"
            match_container = "docker:*"
            ignore = true
            """
        let daemon = try DaemonProcess(
            config: testConfig(interval: "500ms", thresholds: "count_warning = 5", extra: rules))
        defer { daemon.stop() }
        for holder in w.holders {
            let alert = try daemon.awaitLine("the alert for \(holder)") {
                $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(holder) ")
            }
            #expect(alert.contains("user@65534.service"), "\(alert.prefix(300))")
        }
    }
}
