import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing
import WorkloadSupport

/// Issue 20: the eBPF scanner and the poll scanner see the same sockets with the same owners,
/// and both agree with `ss -tanpe` in each namespace, on the same real workloads: plain
/// holders (IPv4, IPv6, IPv4-mapped), a forked child sharing its parent's sockets,
/// connections left in a listener's backlog (inode 0), a socket passed over a unix socket
/// (SCM_RIGHTS: the receiver holds it) and one still in flight (no one holds it), and
/// holders in an `unshare --net` namespace.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct ScannerParityLiveTests {
    /// One socket as `snapshot --json` lists it, everything compared.
    struct Seen: Hashable, CustomStringConvertible {
        var inode: UInt64
        var state: String
        var local: String
        var remote: String
        var recvQ: Int
        var sendQ: Int
        var owners: [Int]
        var netns: UInt64?
        /// Sockets without an inode are known by their addresses.
        var key: String { inode != 0 ? "\(inode)" : "\(local)>\(remote)" }
        var description: String {
            "\(key) \(state) \(local)->\(remote) q=\(recvQ)/\(sendQ) owners=\(owners) netns=\(netns.map(String.init) ?? "-")"
        }
    }

    static func snapshot(_ scanner: String) throws -> (sockets: [String: Seen], doc: [String: Any]) {
        let result = try run(Build.path("closewaitd"), ["snapshot", "--json", "--scanner", scanner])
        #expect(result.status == 0, "\(scanner): \(result.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        var out = [String: Seen]()
        for socket in (doc["sockets"] as? [[String: Any]]) ?? [] {
            let seen = Seen(
                inode: (socket["inode"] as? NSNumber)?.uint64Value ?? 0, state: socket["state"] as? String ?? "",
                local: socket["local"] as? String ?? "", remote: socket["remote"] as? String ?? "",
                recvQ: socket["recvQ"] as? Int ?? -1, sendQ: socket["sendQ"] as? Int ?? -1,
                owners: socket["owners"] as? [Int] ?? [], netns: (socket["netns"] as? NSNumber)?.uint64Value)
            out[seen.key] = seen
        }
        return (out, doc)
    }

    /// `ss -tanpe state close-wait` (in `netns` when given): inode -> holder pids.
    static func ss(in pid: Int32? = nil) throws -> [UInt64: Set<Int>] {
        let arguments = ["-tanpe", "state", "close-wait"]
        let result =
            try pid.map { try run("/usr/bin/nsenter", ["--net=/proc/\($0)/ns/net", "/usr/bin/ss"] + arguments) }
            ?? run("/usr/bin/ss", arguments)
        #expect(result.status == 0, "ss: \(result.stderr)")
        var out = [UInt64: Set<Int>]()
        for line in result.stdout.split(separator: "\n") {
            guard let ino = line.range(of: "ino:") else { continue }
            let inode = UInt64(line[ino.upperBound...].prefix(while: \.isNumber)) ?? 0
            var pids = Set<Int>()
            var rest = line[...]
            while let at = rest.range(of: "pid=") {
                pids.insert(Int(rest[at.upperBound...].prefix(while: \.isNumber)) ?? -1)
                rest = rest[at.upperBound...]
            }
            out[inode] = pids
        }
        return out
    }

    /// Passes one CLOSE_WAIT socket to a receiver over a unix socket (the sender closes its
    /// copy), and leaves another in flight (sent, never received).
    static let passer = """
        import os, socket, sys, time
        L = socket.socket(); L.bind(('127.0.0.1', 0)); L.listen(8)
        def leaked():
            c = socket.create_connection(L.getsockname()); a, _ = L.accept(); a.close(); return c
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        pid = os.fork()
        if pid == 0:
            parent.close()
            got = socket.recv_fds(child, 16, 1)[1]
            print("receiver", os.getpid(), flush=True)
            time.sleep(120); os._exit(0)
        child_in, child_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a, b = leaked(), leaked()
        socket.send_fds(parent, [b"x"], [a.fileno()]); a.close()
        socket.send_fds(child_out, [b"y"], [b.fileno()]); b.close()  # nobody receives this one
        time.sleep(0.5)
        print("ready", pid, flush=True)
        time.sleep(120)
        """

    @Test func bothScannersSeeTheSameSocketsAndOwnersAsSs() throws {
        try #require(getuid() == 0, "eBPF, unshare --net and other users' fds need root")
        let plain = try Workload([
            "--processes", "2", "--v4", "3", "--v6", "2", "--mapped", "1", "--shared", "1", "--backlog", "2",
        ])
        defer { plain.stop() }
        let namespaced = try Workload(
            ["--processes", "1", "--v4", "2", "--v6", "1"], launcher: NamespaceLiveTests.unshare)
        defer { namespaced.stop() }
        let passer = Process()
        passer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        passer.arguments = ["-c", Self.passer]
        let out = Pipe()
        passer.standardOutput = out
        try passer.run()
        defer {
            kill(passer.processIdentifier, SIGKILL)
            passer.waitUntilExit()
        }
        var lines = ""
        try waitFor("the fd passer to be ready", timeout: 20) {
            lines += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
            return lines.contains("ready")
        }
        let receiver =
            Int(lines.split(separator: "\n").first { $0.hasPrefix("receiver") }?.split(separator: " ").last ?? "") ?? -1
        try #require(receiver > 1, "the receiver's pid: \(lines)")
        defer { kill(Int32(receiver), SIGKILL) }

        let first = try Self.snapshot("ebpf")
        let poll = try Self.snapshot("poll")
        let second = try Self.snapshot("ebpf")
        #expect((first.doc["scanner"] as? [String: Any])?["active"] as? String == "ebpf")
        #expect(poll.doc["source"] as? String == "netlink")
        // Sockets other tests make come and go: those both eBPF passes saw alike are compared.
        let stable = first.sockets.filter { second.sockets[$0.key] == $0.value }
        let ours = try plain.manifest() + namespaced.manifest()
        for socket in ours {
            #expect(stable["\(socket.inode)"] != nil, "eBPF missed \(socket.inode) of \(socket.pid) (\(socket.kind))")
        }
        var compared = 0
        for (key, seen) in stable {
            guard let other = poll.sockets[key] else { continue }
            compared += 1
            #expect(other == seen, "poll: \(other) / ebpf: \(seen)")
        }
        // Every one of ours, and the unowned ones: the backlog's two and the one in flight.
        #expect(compared >= Set(ours.map(\.inode)).count)
        let unowned = stable.values.filter(\.owners.isEmpty)
        #expect(unowned.filter { $0.inode == 0 }.count >= 2, "backlog: \(unowned)")
        #expect(unowned.contains { $0.inode != 0 && $0.netns == nil }, "the socket in flight: \(unowned)")
        // The passed socket is the receiver's only, as ss says.
        let held = stable.values.filter { $0.owners == [receiver] }
        #expect(held.count == 1, "receiver \(receiver): \(held)")
        // The forked child shares its parent's sockets: both are owners.
        for sharer in plain.sharers {
            #expect(stable.values.contains { $0.owners.contains(Int(sharer)) && $0.owners.count == 2 })
        }
        // Both against ss, in each namespace.
        let host = try Self.ss()
        let inside = try Self.ss(in: namespaced.holders[0])
        for seen in stable.values where seen.inode != 0 && !seen.owners.isEmpty {
            let table = seen.netns == nil ? host : inside
            guard seen.netns == nil || seen.netns == NamespaceLiveTests.namespace(of: namespaced.holders[0]) else {
                continue
            }
            if let pids = table[seen.inode] { #expect(pids == Set(seen.owners), "ss: \(pids) / \(seen)") }
        }
        for socket in ours {
            let table =
                namespaced.holders.contains(socket.pid) || namespaced.sharers.contains(socket.pid) ? inside : host
            #expect(table[socket.inode]?.contains(Int(socket.pid)) == true, "ss lacks \(socket)")
        }
    }

    /// The counters a tick reads: a socket that enters CLOSE_WAIT and leaves it between two
    /// reads (a client that closes first, a /metrics scrape) moves the entry counter but not
    /// the set's fingerprint, so a busy host reuses its passes; a socket that stays moves it,
    /// and its close moves it back.
    @Test func aSocketThatEntersAndLeavesBetweenTwoReadsLeavesTheFingerprintAlone() throws {
        try #require(getuid() == 0, "loading BPF programs needs CAP_BPF")
        let scanner = try EBPFScanner.open(states: [.closeWait], fault: nil)
        func python(_ code: String) throws {
            let r = try run("/usr/bin/python3", ["-c", code])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let transient = """
            import socket
            L = socket.socket(); L.bind(('127.0.0.1', 0)); L.listen(4)
            for _ in range(20):
                c = socket.create_connection(L.getsockname()); a, _ = L.accept(); a.close()
                assert c.recv(1) == b''; c.close()
            """
        // Other tests make sockets too: a quiet moment is waited for, then the transients made.
        var before = scanner.counters
        var generation = scanner.generation
        try waitFor("a quiet moment on the host", timeout: 30) {
            before = scanner.counters
            generation = scanner.generation
            try python(transient)
            return scanner.counters.entered - before.entered == 20 && scanner.counters.left - before.left == 20
        }
        #expect(scanner.generation == generation)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = [
            "-c",
            """
            import socket, sys, time
            L = socket.socket(); L.bind(('127.0.0.1', 0)); L.listen(4)
            c = socket.create_connection(L.getsockname()); a, _ = L.accept(); a.close()
            assert c.recv(1) == b''; print('held', flush=True); sys.stdin.read(); c.close()
            """,
        ]
        let input = Pipe(), output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        defer {
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
        }
        _ = output.fileHandleForReading.availableData
        try waitFor("the held socket to move the fingerprint", timeout: 10) { scanner.generation != generation }
        input.fileHandleForWriting.closeFile()
        holder.waitUntilExit()
        try waitFor("its close to move it back (or another test's socket)", timeout: 10) {
            scanner.generation == generation || scanner.counters.entered - before.entered > 21
        }
    }

    @Test func withoutTheCapabilitiesAutoPollsAndSaysWhyAndEbpfRefuses() throws {
        try #require(getuid() == 0, "setpriv needs root to drop capabilities")
        let drop = ["--bounding-set=-bpf,-perfmon,-sys_admin", "--inh-caps=-bpf,-perfmon,-sys_admin"]
        let auto = try run("/usr/bin/setpriv", drop + [Build.path("closewaitd"), "snapshot", "--json"])
        #expect(auto.status == 0, "\(auto.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(auto.stdout.utf8)) as? [String: Any]
        let scanner = doc?["scanner"] as? [String: Any]
        #expect(scanner?["active"] as? String == "poll")
        #expect((scanner?["reason"] as? String)?.contains("missing CAP_BPF and CAP_PERFMON") == true, "\(doc ?? [:])")
        let ebpf = try run("/usr/bin/setpriv", drop + [Build.path("closewaitd"), "snapshot", "--scanner", "ebpf"])
        #expect(ebpf.status == 69 && ebpf.stderr.contains("missing CAP_BPF"), "\(ebpf.status) \(ebpf.stderr)")
    }

    @Test func aProgramTheVerifierRefusesIsSaidInItsWords() throws {
        try #require(getuid() == 0, "loading BPF programs needs CAP_BPF")
        let result = try run(
            "/usr/bin/env", ["CLOSEWAITD_BPF_FAULT=verifier", Build.path("closewaitd"), "snapshot", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let reason = (doc?["scanner"] as? [String: Any])?["reason"] as? String ?? ""
        #expect(
            reason.contains("the verifier refused program 'must_refuse'") && reason.contains("invalid mem access"),
            "\(reason)")
    }

    @Test func aDaemonWhosePassesFailPollsThatTickThenGivesEBPFUpAndKeepsAlerting() throws {
        try #require(getuid() == 0, "loading BPF programs needs CAP_BPF")
        let w = try Workload(["--processes", "1", "--v4", "6"])
        defer { w.stop() }
        // A pass every tick (full_scan_interval 0), the iterator gone after two.
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "count_warning = 5").replacingOccurrences(
                of: "[daemon]\n", with: "[daemon]\nfull_scan_interval = \"0s\"\n"),
            environment: ["CLOSEWAITD_BPF_FAULT": "pass-after:2"])
        defer { daemon.stop() }
        _ = try daemon.awaitLine("the eBPF scanner chosen") { $0.contains("MESSAGE_ID=\(MessageID.scannerEBPF)") }
        let given = try daemon.awaitLine("eBPF given up for polling") {
            $0.contains("MESSAGE_ID=\(MessageID.scannerPoll)") && $0.contains("failed 3 times in a row")
        }
        #expect(given.contains("CLOSEWAIT_SCANNER=poll"))
        _ = try daemon.awaitLine("the alert, from polling") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(w.holders[0]) ")
        }
    }
}
