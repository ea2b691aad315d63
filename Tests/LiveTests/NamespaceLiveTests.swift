import CloseWaitCore
@testable import CloseWaitLinux
import Foundation
import Testing

/// Issue 10: CLOSE_WAIT sockets in other network namespaces are sampled and attributed.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct NamespaceLiveTests {
    /// `unshare --net`, then `lo` up, then exec the workload: its sockets live on that
    /// namespace's own loopback, invisible to netlink from here.
    static let unshare = ["/usr/bin/unshare", "--net", "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]

    static func namespace(of pid: Int32) -> UInt64? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"))
            .flatMap { UInt64($0.dropFirst(5).dropLast()) }
    }

    @Test func aHolderInAnotherNetworkNamespaceIsAttributedWithItsNamespace() throws {
        try #require(getuid() == 0, "unshare --net needs root")
        let w = try Workload(["--processes", "2", "--v4", "3", "--v6", "1"], launcher: Self.unshare)
        defer { w.stop() }
        let netns = try #require(Self.namespace(of: w.holders[0]))
        #expect(netns != Self.namespace(of: getpid()))
        let result = try run(Build.path("closewaitd"), ["snapshot", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let processes = (doc?["processes"] as? [[String: Any]]) ?? []
        for holder in w.holders {
            let entry = processes.first { $0["pid"] as? Int == Int(holder) }
            #expect(entry?["closeWait"] as? Int == 4, "holder \(holder)")
            #expect((entry?["netns"] as? NSNumber)?.uint64Value == netns)
        }
        // Every socket of the manifest, with exactly its owner and its namespace.
        let sockets = (doc?["sockets"] as? [[String: Any]]) ?? []
        for socket in try w.manifest() {
            let entry = sockets.first { ($0["inode"] as? NSNumber)?.uint64Value == socket.inode }
            #expect((entry?["owners"] as? [Int]) == [Int(socket.pid)], "inode \(socket.inode)")
            #expect((entry?["netns"] as? NSNumber)?.uint64Value == netns)
        }
        // With --namespaces own, they are not seen at all.
        let own = try run(Build.path("closewaitd"), ["snapshot", "--json", "--namespaces", "own"])
        #expect(!own.stdout.contains("\"pid\": \(w.holders[0]),"))
    }

    @Test func theDaemonAlertsOnALeakInAnotherNamespace() throws {
        try #require(getuid() == 0, "unshare --net needs root")
        let w = try Workload(["--processes", "1", "--v4", "6"], launcher: Self.unshare)
        defer { w.stop() }
        let netns = try #require(Self.namespace(of: w.holders[0]))
        let daemon = try DaemonProcess(config: testConfig(thresholds: "count_warning = 5"))
        defer { daemon.stop() }
        let alert = try daemon.awaitLine("alert for the namespaced holder") {
            $0.contains("MESSAGE_ID=\(MessageID.crossed)") && $0.contains("CLOSEWAIT_PID=\(w.holders[0]) ")
        }
        #expect(alert.contains("CLOSEWAIT_NETNS=\(netns) "))
        #expect(
            alert.contains("closewaitd-work[\(w.holders[0])] (netns \(netns)) holds 6 CLOSE_WAIT sockets"), "\(alert)")
    }

    @Test func anIPNetnsNamespaceIsSampledToo() throws {
        try #require(getuid() == 0, "ip netns needs root")
        let name = "cwtest\(getpid())"
        _ = try run("/usr/sbin/ip", ["netns", "add", name])
        defer { _ = try? run("/usr/sbin/ip", ["netns", "del", name]) }
        let w = try Workload(
            ["--processes", "1", "--v4", "2"],
            launcher: [
                "/usr/sbin/ip", "netns", "exec", name, "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"",
            ])
        defer { w.stop() }
        let result = try run(Build.path("closewaitd"), ["snapshot", "--pid", String(w.holders[0])])
        #expect(result.stdout.contains("netns "), "\(result.stdout)")
        #expect(result.stdout.contains("2  "), "\(result.stdout)")
    }

    @Test func aNamedNamespaceWithNoProcessIsReportedNotSilentlySkipped() throws {
        try #require(getuid() == 0, "ip netns needs root")
        let name = "cwempty\(getpid())"
        _ = try run("/usr/sbin/ip", ["netns", "add", name])
        defer { _ = try? run("/usr/sbin/ip", ["netns", "del", name]) }
        // Polling reads a namespace through a member; eBPF sees sockets through their holders.
        let result = try run(Build.path("closewaitd"), ["snapshot", "--scanner", "poll"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("not sampled (reading one needs setns, CAP_SYS_ADMIN): "), "\(result.stderr)")
        #expect(result.stderr.contains("/run/netns/\(name) (net:["), "\(result.stderr)")
        // Once a process lives in it, it is sampled through that process and no longer reported.
        let w = try Workload(
            ["--processes", "1", "--v4", "2"],
            launcher: [
                "/usr/sbin/ip", "netns", "exec", name, "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"",
            ])
        defer { w.stop() }
        let again = try run(Build.path("closewaitd"), ["snapshot", "--pid", String(w.holders[0])])
        #expect(!again.stderr.contains("/run/netns/\(name) "), "\(again.stderr)")
        #expect(again.stdout.contains("netns "), "\(again.stdout)")
    }

    @Test func anIdleNamespaceIsNotReReadButAChangeIsSeenAtOnce() throws {
        // Three sockets at once, a fourth a second after ready: the TCP counters move then.
        let w = try Workload(
            ["--processes", "1", "--v4", "3", "--grow-per-second", "0.5", "--grow-max", "4"], launcher: Self.unshare)
        defer { w.stop() }
        var sampler = KernelSampler(choice: .netlink)
        sampler.namespaces = NetNamespaces()
        let ns = try #require(sampler.namespaces?.namespace(of: w.holders[0]))
        func inNamespace(_ s: KernelSampler.Sample) -> Int { s.records.filter { s.foreign[$0.inode] == ns }.count }
        var now = 1.0
        let first = try sampler.sample(states: [.closeWait], now: now)
        #expect(inNamespace(first) >= 3)
        var reused = false
        try waitFor("the fourth socket, seen through the moved counters", timeout: 20) {
            now += 0.1
            let s = try sampler.sample(states: [.closeWait], now: now)
            if s.coverage.unchanged > 0 { reused = true; #expect(inNamespace(s) >= 3) }
            return inNamespace(s) == 4
        }
        #expect(reused, "an idle namespace's table was read again every time")
    }

    /// An idle namespace is reused while its counters stand still, but read again once
    /// `foreignRecheck` has passed since its last read (reuses do not push that back).
    @Test func anIdleNamespaceIsReadAgainAfterTheRecheckInterval() throws {
        let w = try Workload(["--processes", "1", "--v4", "3"], launcher: Self.unshare)
        defer { w.stop() }
        var sampler = KernelSampler(choice: .netlink)
        sampler.namespaces = NetNamespaces()
        sampler.foreignRecheck = 10
        sampler.foreignBudget = 60  // other tests' namespaces must not crowd this one out
        let ns = try #require(sampler.namespaces?.namespace(of: w.holders[0]))
        func sample(_ now: Double) throws {
            let s = try sampler.sample(states: [.closeWait], now: now)
            #expect(s.records.filter { s.foreign[$0.inode] == ns }.count == 3)
        }
        var reused = false
        for now in stride(from: 100.0, through: 130, by: 2) {
            try sample(now)
            let readAt = try #require(sampler.foreignCache[ns]?.readAt)
            if readAt < now { reused = true }
            #expect(now - readAt < sampler.foreignRecheck, "at \(now) the table was last read at \(readAt)")
        }
        #expect(reused, "an idle namespace's table was read again every time")
    }
}
