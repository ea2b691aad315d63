@testable import CloseWaitCore
import Testing

@Suite struct SnapshotTests {
    static func record(_ inode: UInt64, peer: Endpoint, port: UInt16 = 40000) -> SocketRecord {
        SocketRecord(
            family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: port),
            remote: peer, inode: inode, uid: 0, recvQ: 1, sendQ: 0, cookie: inode)
    }

    static let peerA = Endpoint(address: .v4(10, 0, 0, 5), port: 8080)
    static let peerB = Endpoint(address: .v4(10, 0, 0, 6), port: 443)

    static func details(_ pid: Int32, _ comm: String, unit: String? = nil) -> ProcessDetails {
        ProcessDetails(
            identity: ProcessIdentity(pid: pid, startTime: 100), comm: ByteString(comm),
            unit: unit.map { ByteString($0) }, fdOpen: 10, fdLimit: 1024)
    }

    @Test func joinsOwnersCountsPeersAndUnowned() {
        let records = [
            Self.record(11, peer: Self.peerA, port: 1), Self.record(12, peer: Self.peerA, port: 2),
            Self.record(13, peer: Self.peerB, port: 3), Self.record(14, peer: Self.peerA, port: 4),
            Self.record(0, peer: Self.peerB, port: 5), Self.record(15, peer: Self.peerB, port: 6),
        ]
        let owners: [UInt64: [Int32]] = [11: [100], 12: [100], 13: [100, 200], 14: [200], 15: [300]]
        let details: [Int32: ProcessDetails] = [
            100: Self.details(100, "java", unit: "orders.service"), 200: Self.details(200, "java"),
        ]
        let snapshot = Snapshot.join(
            records: records, owners: owners, details: details,
            statistics: ScanStatistics(), source: .netlink, states: [.closeWait])
        #expect(snapshot.total == 6)
        #expect(snapshot.unowned == 2)
        #expect(snapshot.processes.map(\.details.pid) == [100, 200])
        #expect(snapshot.processes[0].socketCount == 3)
        #expect(snapshot.processes[0].peers.map { $0.description() } == ["10.0.0.5:8080×2", "10.0.0.6:443×1"])
        #expect(snapshot.sockets.first { $0.record.inode == 13 }?.owners == [100, 200])
        #expect(snapshot.sockets.first { $0.record.inode == 0 }?.unownedReason == .listenBacklog)
        // pid 300 vanished before its details were read: the socket is unowned.
        #expect(snapshot.sockets.first { $0.record.inode == 15 }?.unownedReason == .noOwnerFound)

        let table = SnapshotReport.table(snapshot)
        #expect(table.contains("orders.service"))
        #expect(table.contains("10.0.0.5:8080×2"))
        #expect(table.contains("unowned: 2 (listen-backlog 1, no-owner-found 1)"))
        #expect(table.contains("total: 6 close-wait sockets, 2 processes"))

        let filtered = snapshot.filtered(pids: [], units: ["orders.*"])
        #expect(filtered.processes.map(\.details.pid) == [100])
        #expect(filtered.total == 3)
    }

    /// A peer address means something only in its namespace: the join keeps 127.0.0.1:8080 in
    /// a container apart from 127.0.0.1:8080 on the host, and every output says which is which.
    @Test func peersAreCountedAndShownPerNetworkNamespace() throws {
        let loopback = Endpoint(address: .v4(127, 0, 0, 1), port: 8080)
        let records = [
            Self.record(11, peer: loopback, port: 1), Self.record(12, peer: loopback, port: 2),
            Self.record(13, peer: loopback, port: 3), Self.record(14, peer: loopback, port: 4),
        ]
        var inContainer = Self.details(100, "java")
        inContainer.netns = 4026532001
        // 11, 12 in the process's namespace; 13 passed in from another one; 14 from the host's.
        let foreign: [UInt64: UInt64] = [11: 4026532001, 12: 4026532001, 13: 4026532002]
        let snapshot = Snapshot.join(
            records: records, owners: OwnerMap([11: [100], 12: [100], 13: [100], 14: [100]]),
            details: [100: inContainer], statistics: ScanStatistics(), source: .netlink,
            states: [.closeWait], foreign: foreign)
        let peers = snapshot.processes[0].peers
        #expect(peers.map(\.count) == [2, 1, 1])
        #expect(peers.map(\.netns) == [4026532001, nil, 4026532002])
        #expect(
            peers.map { $0.description(shown: inContainer.netns) } == [
                "127.0.0.1:8080×2", "127.0.0.1:8080×1 (host netns)", "127.0.0.1:8080×1 (netns 4026532002)",
            ])
        #expect(peers[0].place() == "127.0.0.1:8080 in netns 4026532001")
        #expect(peers[0].place(shown: 4026532001) == "127.0.0.1:8080")
        #expect(
            SnapshotReport.table(snapshot).contains(
                "127.0.0.1:8080×2 127.0.0.1:8080×1 (host netns) 127.0.0.1:8080×1 (netns 4026532002)\n"))
        let json = String(decoding: SnapshotReport.json(snapshot).renderedBytes(pretty: false), as: UTF8.self)
        #expect(json.contains(#"{"address":"127.0.0.1","port":8080,"count":1,"netns":4026532002}"#))
        #expect(json.contains(#"{"address":"127.0.0.1","port":8080,"count":1,"netns":null}"#))

        // The alert names the top peer's namespace only where its process line does not.
        func alert(_ peers: [PeerCount]) -> JournalEntry {
            let status = ProcessStatus(
                details: inContainer, count: 4, peers: peers, growthPerMinute: 3, oldestAge: 60,
                since: 0, predictedExhaustion: nil)
            return AlertMessage.entry(
                AlertEvent(
                    kind: .crossed, reason: .count, level: .warning, process: status, total: 4,
                    value: 4, threshold: 3, rule: "default"))
        }
        #expect(alert(peers).message.contains("2 to 127.0.0.1:8080;"))
        #expect(alert(peers).field("CLOSEWAIT_TOP_PEER_NETNS") == "4026532001")
        #expect(alert([peers[2]]).message.contains("1 to 127.0.0.1:8080 in netns 4026532002;"))
        #expect(alert([peers[1]]).message.contains("1 to 127.0.0.1:8080 in the host netns;"))
        #expect(alert([peers[1]]).field("CLOSEWAIT_TOP_PEER_NETNS") == nil)
    }

    @Test func permissionDeniedIsExplained() {
        var stats = ScanStatistics()
        stats.permissionDenied = 4
        let snapshot = Snapshot.join(
            records: [Self.record(11, peer: Self.peerA)], owners: [:], details: [:],
            statistics: stats, source: .proc, states: [.closeWait])
        #expect(snapshot.sockets[0].unownedReason == .ownerUnreadable)
        #expect(SnapshotReport.table(snapshot).contains("could not read the fd tables of 4 processes"))
    }

    @Test func jsonHasTheDocumentedKeys() {
        let snapshot = Snapshot.join(
            records: [Self.record(11, peer: Self.peerA)], owners: [11: [100]],
            details: [100: Self.details(100, "a\"b")], statistics: ScanStatistics(),
            source: .netlink, states: [.closeWait])
        let json = SnapshotReport.json(snapshot).rendered()
        #expect(
            json.hasPrefix(
                #"{"source":"netlink","states":["close-wait"],"total":1,"unowned":0,"processes":[{"pid":100,"startTime":100,"comm":"a\"b""#
            ))
        for key in [
            "\"exe\"", "\"unit\"", "\"uid\"", "\"closeWait\":1", "\"fdOpen\":10", "\"fdLimit\":1024",
            #""peers":[{"address":"10.0.0.5","port":8080,"count":1,"netns":null}]"#, "\"sockets\":[{\"inode\":11",
            "\"local\":\"127.0.0.1:40000\"", "\"remote\":\"10.0.0.5:8080\"", "\"recvQ\":1", "\"sendQ\":0",
            "\"owners\":[100]",
        ] {
            #expect(json.contains(key), "missing \(key)")
        }
    }

    @Test(arguments: [
        ("*.service", "orders.service", true), ("orders.service", "orders.service", true),
        ("order?.service", "orders.service", true), ("[a-n]*", "orders.service", false),
        ("[!a-n]*", "orders.service", true), ("*", "", true), ("a*b*c", "axxbyyc", true), ("a*b*c", "axxbyy", false),
    ])
    func glob(pattern: String, text: String, expected: Bool) {
        #expect(Glob.matches(pattern, text) == expected)
    }

    @Test func ipv6Text() {
        func v6(_ groups: [UInt16]) -> String {
            IPAddress(networkBytes: groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] })!.description
        }
        #expect(v6([0, 0, 0, 0, 0, 0, 0, 1]) == "::1")
        #expect(v6([0, 0, 0, 0, 0, 0, 0, 0]) == "::")
        #expect(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]) == "2001:db8::1:0:0:1")
        #expect(v6([0x2001, 0xdb8, 1, 2, 3, 4, 5, 6]) == "2001:db8:1:2:3:4:5:6")
        #expect(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]) == "10.0.0.1")
    }

    /// Issue 17, row 2: forked children holding exactly their parent's sockets are tracked as
    /// the parent with a count, and past max_processes the rest are counted, not kept.
    @Test func forkedSharersAreOneEntryAndTheRestAreCapped() throws {
        func record(_ inode: UInt64) -> SocketRecord {
            SocketRecord(
                family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 40000),
                remote: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), inode: inode, uid: 0, recvQ: 1, sendQ: 0)
        }
        var owners = [UInt64: [Int32]]()
        var details = [Int32: ProcessDetails]()
        func add(_ pid: Int32, start: UInt64, _ inodes: [UInt64]) {
            details[pid] = ProcessDetails(
                identity: ProcessIdentity(pid: pid, startTime: start), comm: ByteString("p\(pid)"))
            for inode in inodes { owners[inode, default: []].append(pid) }
        }
        // A parent (started first) and 999 children holding its 150 sockets.
        add(5000, start: 10, Array(1...150))
        for child in Int32(5001)...5999 { add(child, start: 20, Array(1...150)) }
        // A parent and two workers sharing 3 sockets: below groupAbove, three rows.
        for pid in Int32(100)...102 { add(pid, start: 1, [201, 202, 203]) }
        // 30 small holders of one socket each.
        for i in 0..<30 { add(Int32(7000 + i), start: 5, [UInt64(300 + i)]) }
        let records = (Array(1...150) + [201, 202, 203] + (300..<330).map(UInt64.init)).map(record)
        let snapshot = Snapshot.join(
            records: records, owners: OwnerMap(owners), details: details, statistics: ScanStatistics(),
            source: .netlink, states: [.closeWait], keepSockets: false, maxProcesses: 20)
        let leader = try #require(snapshot.processes.first)
        #expect(leader.details.pid == 5000 && leader.socketCount == 150)
        #expect(leader.details.sharedWith?.count == 999)
        #expect(leader.details.sharedWith?.pids == [5001, 5002, 5003, 5004, 5005])
        #expect(
            leader.details.whereItRuns.contains(
                "its sockets shared by 999 other processes (5001, 5002, 5003, 5004, 5005, …)"))
        #expect(snapshot.processes.filter { (100...102).contains($0.details.pid) }.count == 3)
        #expect(snapshot.processes.count == 20, "capped")
        #expect(snapshot.untracked == 14, "34 rows, 20 kept: \(snapshot.untracked)")
        #expect(snapshot.total == 183 && snapshot.unowned == 0)
    }

    /// One unreadable process of another user (here: pid 1 of the sandbox) must not make every
    /// unowned socket "owner-unreadable": only sockets of an unreadable process's uid are.
    @Test func onlyAnUnreadableUsersSocketsMayBeHidden() {
        var stats = ScanStatistics()
        stats.permissionDenied = 1
        stats.unreadableUIDs = [0]
        func record(_ inode: UInt64, uid: UInt32) -> SocketRecord {
            SocketRecord(
                family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 40000),
                remote: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), inode: inode, uid: uid, recvQ: 1, sendQ: 0)
        }
        let snapshot = Snapshot.join(
            records: [record(1, uid: 0), record(2, uid: 65534), record(3, uid: 65534)], owners: OwnerMap(),
            details: [:], statistics: stats, source: .netlink, states: [.closeWait])
        #expect(snapshot.ownerUnreadable == 1)
        #expect(snapshot.unownedHeld == 2)
        #expect(snapshot.sockets.map(\.unownedReason) == [.ownerUnreadable, .noOwnerFound, .noOwnerFound])
        stats.unreadableUIDs = []  // a source that does not say whose: every socket may be hidden
        #expect(
            Snapshot.join(
                records: [record(2, uid: 65534)], owners: OwnerMap(), details: [:], statistics: stats,
                source: .netlink, states: [.closeWait]
            ).ownerUnreadable == 1)
    }
}
