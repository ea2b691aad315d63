import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

/// A helper process that prints one JSON line when ready; ended by pid.
final class ReadyProcess {
    let process = Process()
    private(set) var ready: [String: Any] = [:]
    private let stdin = Pipe()

    init(_ executable: String, _ arguments: [String], timeout: Double = 30) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        let fd = out.fileHandleForReading.fileDescriptor
        var line = [UInt8]()
        let end = Date().addingTimeInterval(timeout)
        while !line.contains(0x0a) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Date() < end, poll(&entry, 1, Int32(max(1, end.timeIntervalSinceNow * 1000))) == 1 else {
                stop()
                throw TimedOut(description: "\(executable) not ready within \(timeout) s")
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { stop(); throw TimedOut(description: "\(executable) exited before it was ready") }
            line += chunk[0..<n]
        }
        // A JSON object, or any other line that just says "ready".
        ready = (try? JSONSerialization.jsonObject(with: Data(line.prefix { $0 != 0x0a }))) as? [String: Any] ?? [:]
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
@Suite(.serialized) struct HostileUserLiveTests {
    static let redteam = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("redteam").path

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
        // 120 connections are 240 lines of 150 bytes in a random (hash) order: the first 60%
        // hold some of the 120 CLOSE_WAIT lines, never all.
        let size = try ProcFS(root: "/proc/\(w.holders[0])").read("net/tcp").count
        sampler.foreignByteLimit = size * 6 / 10
        sampler.foreignRecheck = 0
        let cut = try sampler.sample(states: [.closeWait], now: 2)
        #expect(cut.coverage.cut[ns]?.contains("larger than") == true, "\(cut.coverage)")
        #expect(inNamespace(cut) > 0 && inNamespace(cut) < 120, "\(inNamespace(cut)) \(cut.records.count) \(cut.foreign.count)")
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
        func count(_ s: KernelSampler.Sample, _ ns: UInt64) -> Int { s.records.filter { s.foreign[$0.inode] == ns }.count }
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
        let daemon = try DaemonProcess(config: testConfig(interval: "500ms", thresholds: "count_warning = 1",
                                                          extra: "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n"))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        try waitFor("a page with every leaker", timeout: 30) { ((try? LoopbackClient.get(port: port)) ?? "").utf8.count > 40_000 }
        let attack = try ReadyProcess("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
                                                           Self.redteam + "/metrics-attack.py", mode, String(port), String(connections), "60"])
        defer { attack.stop() }
        // Let the attack reach its steady state (the server closing, the attacker replacing).
        let settle = Date()
        try waitFor("the attack under way", timeout: 10) { Date().timeIntervalSince(settle) >= 3 }
        var times = [Double]()
        for _ in 0..<5 {
            let start = Date()
            let page = try LoopbackClient.get(port: port)
            times.append(Date().timeIntervalSince(start))
            #expect(page.hasPrefix("HTTP/1.1 200 OK") && page.contains("closewaitd_close_wait_sockets "), "\(page.prefix(200))")
        }
        #expect(times.filter { $0 < 1 }.count >= 4, "scrape times under attack: \(times)")
        #expect(times.allSatisfy { $0 < 3 }, "scrape times under attack: \(times)")
        #expect(attack.process.isRunning, "the attack ran throughout")
    }
}
