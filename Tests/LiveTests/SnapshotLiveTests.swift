import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

/// Real CLOSE_WAIT sockets on loopback, held by child processes, seen through the real
/// netlink sock_diag, /proc and `closewaitd snapshot`, and compared with `ss`.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct SnapshotLiveTests {
    /// The poll scanner's sources (netlink, /proc) are what these check; the eBPF scanner is
    /// compared with them in ScannerParityLiveTests.
    static func snapshotJSON(_ extra: [String] = []) throws -> [String: Any] {
        let result = try run(Build.path("closewaitd"), ["snapshot", "--json", "--scanner", "poll"] + extra)
        #expect(result.status == 0, "snapshot failed: \(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    static func processes(_ doc: [String: Any]) -> [Int32: [String: Any]] {
        var byPid = [Int32: [String: Any]]()
        for p in doc["processes"] as? [[String: Any]] ?? [] { byPid[Int32(p["pid"] as! Int)] = p }
        return byPid
    }

    static func ownersByInode(_ doc: [String: Any]) -> [UInt64: Set<Int32>] {
        var owners = [UInt64: Set<Int32>]()
        for s in doc["sockets"] as? [[String: Any]] ?? [] {
            owners[UInt64(s["inode"] as! Int)] = Set((s["owners"] as? [Int] ?? []).map(Int32.init))
        }
        return owners
    }

    /// `ss -tnpH state close-wait`: (pid -> socket count) and the lines mentioning `ports`.
    static func ssView(ports: Set<Int>) throws -> (perPid: [Int32: Int], lines: Int) {
        let result = try run("/usr/bin/env", ["ss", "-tnpH", "state", "close-wait"])
        #expect(result.status == 0, "ss failed: \(result.stderr)")
        var perPid = [Int32: Int]()
        var lines = 0
        for line in result.stdout.split(separator: "\n") {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 4 else { continue }
            let endpoints = [columns[2], columns[3]].compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }
            guard endpoints.contains(where: ports.contains) else { continue }
            lines += 1
            var pids = Set<Int32>()
            for part in line.split(separator: ",") where part.hasPrefix("pid=") {
                if let pid = Int32(part.dropFirst(4)) { pids.insert(pid) }
            }
            for pid in pids { perPid[pid, default: 0] += 1 }
        }
        return (perPid, lines)
    }

    @Test func attributesEverySocketToTheRightProcessesAndAgreesWithSS() throws {
        // Two holders with IPv4, IPv6 and v4-mapped sockets; the first shares all of its
        // sockets with a forked child; two connections wait unaccepted in a listen backlog.
        let a = try Workload([
            "--processes", "2", "--v4", "3", "--v6", "2", "--mapped", "1", "--shared", "1", "--backlog", "2",
        ])
        defer { a.stop() }
        let b = try Workload(["--processes", "1", "--v4", "4", "--filler", "20"])
        defer { b.stop() }
        let manifest = try a.manifest() + b.manifest()
        #expect(manifest.count == 2 * 6 + 6 + 4)  // holders, the sharer's copies, b's holder

        let doc = try Self.snapshotJSON()
        #expect(doc["source"] as? String == "netlink")
        let byPid = Self.processes(doc)
        let owners = Self.ownersByInode(doc)

        // Every manifest socket is in the snapshot with exactly the owners the manifest lists.
        var expectedOwners = [UInt64: Set<Int32>]()
        for socket in manifest { expectedOwners[socket.inode, default: []].insert(socket.pid) }
        for (inode, pids) in expectedOwners {
            #expect(owners[inode] == pids, "inode \(inode)")
        }
        #expect(expectedOwners.values.filter { $0.count == 2 }.count == 6)  // the shared ones

        // Per process: count and peers.
        for pid in a.holders + a.sharers {
            let entry = try #require(byPid[pid], "holder \(pid) missing")
            #expect(entry["closeWait"] as? Int == 6)
            #expect(entry["comm"] as? String == "closewaitd-work")
            let peers = (entry["peers"] as? [[String: Any]] ?? []).map {
                "\($0["address"] as! String):\($0["port"] as! Int)×\($0["count"] as! Int)"
            }
            #expect(Set(peers) == ["127.0.0.1:\(a.port4)×4", "::1:\(a.port6)×2"])
            #expect((entry["fdOpen"] as? Int ?? 0) >= 6)
            #expect((entry["fdLimit"] as? Int ?? 0) > 0)
            #expect((entry["startTime"] as? Int ?? 0) > 0)
        }
        let bHolder = try #require(byPid[b.holders[0]])
        #expect(bHolder["closeWait"] as? Int == 4)
        #expect((bHolder["fdOpen"] as? Int ?? 0) >= 24)

        // The backlog connections: CLOSE_WAIT with inode 0, reported unowned with the reason.
        let backlog = (doc["sockets"] as? [[String: Any]] ?? []).filter {
            ($0["local"] as? String) == "127.0.0.1:\(a.backlogPort)"
        }
        #expect(backlog.count == 2)
        #expect(
            backlog.allSatisfy {
                $0["inode"] as? Int == 0 && ($0["owners"] as? [Int])?.isEmpty == true
                    && $0["unownedReason"] as? String == "listen-backlog"
            })
        #expect((doc["unowned"] as? Int ?? 0) >= 2)

        // ss, run now, sees the same processes with the same counts.
        let ss = try Self.ssView(ports: [a.port4, a.port6, a.backlogPort, b.port4])
        #expect(ss.lines == 6 * 2 + 2 + 4)
        for pid in a.holders + a.sharers + b.holders {
            #expect(ss.perPid[pid] == (byPid[pid]?["closeWait"] as? Int), "pid \(pid)")
        }
    }

    @Test func procSourceAttributesTheSameAsNetlink() throws {
        let w = try Workload(["--processes", "2", "--v4", "2", "--v6", "1", "--mapped", "1"])
        defer { w.stop() }
        let viaNetlink = try Self.snapshotJSON(["--source", "netlink"])
        let viaProc = try Self.snapshotJSON(["--source", "proc"])
        #expect(viaProc["source"] as? String == "proc")
        for pid in w.holders {
            let n = try #require(Self.processes(viaNetlink)[pid])
            let p = try #require(Self.processes(viaProc)[pid])
            #expect(n["closeWait"] as? Int == 4)
            #expect(p["closeWait"] as? Int == 4)
            #expect(n["inodes"] as? [Int] == p["inodes"] as? [Int])
        }
    }

    @Test func netlinkAndProcSamplersYieldTheSameRecords() throws {
        let w = try Workload(["--processes", "1", "--v4", "3", "--v6", "3", "--mapped", "2", "--backlog", "1"])
        defer { w.stop() }
        let ports = Set([w.port4, w.port6, w.backlogPort].map(UInt16.init))
        func ours(_ records: [SocketRecord]) -> Set<SocketRecord> {
            Set(records.filter { ports.contains($0.local.port) || ports.contains($0.remote.port) }.map(\.withoutCookie))
        }
        var netlink = KernelSampler(choice: .netlink)
        let proc = KernelSampler(choice: .proc)
        var procSampler = proc
        let fromNetlink = try netlink.sample(states: [.closeWait])
        let fromProc = try procSampler.sample(states: [.closeWait])
        #expect(fromNetlink.source == .netlink && fromProc.source == .proc)
        #expect(ours(fromNetlink.records).count == 9)
        #expect(ours(fromNetlink.records) == ours(fromProc.records))
        #expect(
            fromNetlink.records.filter { ports.contains($0.local.port) || ports.contains($0.remote.port) }
                .allSatisfy { $0.cookie != nil && $0.state == .closeWait })
        // One combined TCPDIAG_GETSOCK walk reports what the two per-family dumps report.
        var perFamily = KernelSampler(choice: .netlink)
        #expect(ours(try perFamily.samplePerFamily([.closeWait])) == ours(fromNetlink.records))
        #expect(netlink.combinedDump)
        // v4-mapped peers read as IPv4 from both sources.
        #expect(ours(fromProc.records).filter { $0.family == .inet6 && !$0.remote.address.isV6 }.count == 2)
    }

    @Test func filtersByPidAndTable() throws {
        let w = try Workload(["--processes", "2", "--v4", "2"])
        defer { w.stop() }
        let pid = w.holders[0]
        let doc = try Self.snapshotJSON(["--pid", String(pid)])
        #expect(Self.processes(doc).keys.sorted() == [pid])
        #expect(doc["total"] as? Int == 2)
        let table = try run(Build.path("closewaitd"), ["snapshot", "--pid", String(pid)])
        #expect(table.status == 0)
        #expect(table.stdout.contains("closewaitd-work"))
        #expect(table.stdout.contains("127.0.0.1:\(w.port4)×2"))
        #expect(table.stdout.contains("total: 2 close-wait sockets, 1 process"))
    }

    @Test func unprivilegedRunSaysSoAndStillWorks() throws {
        guard getuid() == 0 else { return }  // needs root to drop to another user
        let w = try Workload(["--processes", "1", "--v4", "2"])
        defer { w.stop() }
        let result = try run(
            "/usr/bin/setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups",
                Build.path("closewaitd"), "snapshot",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("permission denied"))
        #expect(result.stdout.contains("unowned:"))
        #expect(!result.stdout.contains(String(w.holders[0])))
    }

    @Test func badStateIsAUsageError() throws {
        let result = try run(Build.path("closewaitd"), ["snapshot", "--state", "close-wiat"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("unknown state 'close-wiat'"))
    }
}
