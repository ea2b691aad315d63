@testable import CloseWaitCore
import Testing

@Suite struct DiagnosisTests {
    let peer = Endpoint(address: .v4(10, 0, 0, 7), port: 8080)

    func evidence(
        count: Int = 40, established: Int? = 0, unread: Int = 0, unreadBytes: UInt64 = 0,
        pattern: GrowthPattern, growth: Double? = 12
    ) -> Evidence {
        Evidence(
            closeWait: count,
            peers: [
                PeerEvidence(
                    peer: peer, closeWait: count, established: established, unread: unread,
                    unreadBytes: unreadBytes, unsent: 0, localPorts: 40000...40100)
            ],
            ages: (600, 300, 2), growthPerMinute: growth, pattern: pattern)
    }

    /// explain's first line says where the process runs in the same words as its alert.
    @Test func explainNamesWhereTheProcessRunsLikeTheAlert() {
        var details = ProcessDetails(
            identity: ProcessIdentity(pid: 4242, startTime: 1), comm: ByteString("java"), fdOpen: 10, fdLimit: 1024)
        details.innerPID = 7
        details.netns = 4026532001
        func header(_ d: ProcessDetails) -> Substring {
            let entry = ProcessEntry(
                details: d, inodes: [1], peers: [PeerCount(endpoint: peer, count: 1, netns: d.netns)])
            let e = evidence(pattern: .steady)
            return ExplainReport(process: entry, tracked: nil, evidence: e, diagnosis: Diagnosis.classify(e)).text()
                .prefix { $0 != "\n" }
        }
        #expect(header(details) == "java[4242] (pid 7 in its namespace, netns 4026532001)")
        details.container = ContainerIdentity(runtime: .podman, id: ByteString(String(repeating: "ab", count: 32)))
        #expect(header(details) == "java[4242] (container podman:abababababab, pid 7 inside, netns 4026532001)")
        #expect(header(details).hasSuffix(details.whereItRuns))
    }

    @Test func steadyGrowthQuietQueuesNoLiveConnectionIsAbandoned() {
        let d = Diagnosis.classify(evidence(pattern: .steady))
        #expect(d.kind == .abandonedConnections)
        #expect(d.sentence.hasPrefix("Abandoned connections: a steady climb (+12.0/min)"))
        #expect(d.advice.contains("close"))
    }

    @Test func aFlatCountWithQuietQueuesIsAnIdlePool() {
        let d = Diagnosis.classify(evidence(established: 4, pattern: .plateau, growth: 0))
        #expect(d.kind == .idlePool)
        #expect(d.sentence.contains("4 live connection(s) to the same peer"))
        #expect(d.advice.contains("idle"))
    }

    @Test func mostSocketsHoldingDataAreUnreadResponses() {
        let d = Diagnosis.classify(evidence(unread: 30, unreadBytes: 123_456, pattern: .unknown, growth: nil))
        #expect(d.kind == .unreadResponses)
        #expect(d.sentence.contains("30 of 40 CLOSE_WAIT sockets still hold 123456 unread bytes"))
    }

    @Test(arguments: [
        // Growth, but the process keeps live connections to the peer: a pool that also leaks? Not claimed.
        (4, 0, GrowthPattern.steady),
        // ESTABLISHED not looked up (permission): abandonment cannot be claimed.
        (-1, 0, .steady),
        // Some unread data, but not most: neither quiet nor unread.
        (0, 15, .steady),
        (0, 15, .plateau),
        // Bursts and falling counts fit no class.
        (0, 0, .bursts),
        (0, 0, .falling),
        // Too early to tell.
        (0, 0, .unknown),
    ])
    func ambiguousEvidenceIsUnknown(established: Int, unread: Int, pattern: GrowthPattern) {
        let d = Diagnosis.classify(
            evidence(established: established < 0 ? nil : established, unread: unread, pattern: pattern))
        #expect(d.kind == .unknown, "\(d.sentence)")
        #expect(d.sentence.hasPrefix("Cause not determined"))
    }

    @Test func tooFewSocketsAreNeverClassified() {
        #expect(Diagnosis.classify(evidence(count: 2, unread: 2, pattern: .steady)).kind == .unknown)
    }

    @Test func patterns() {
        func samples(_ counts: [Int]) -> [(time: Double, count: Int)] {
            counts.enumerated().map { (Double($0.offset) * 5, $0.element) }
        }
        let window = 60.0
        #expect(
            GrowthPattern.of(samples([10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34]), window: window) == .steady)
        #expect(
            GrowthPattern.of(samples([10, 10, 10, 10, 10, 40, 40, 40, 40, 40, 40, 40, 40]), window: window) == .bursts)
        #expect(
            GrowthPattern.of(samples([50, 50, 51, 50, 49, 50, 50, 51, 50, 50, 50, 50, 50]), window: window) == .plateau)
        #expect(
            GrowthPattern.of(samples([50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 3, 2, 1]), window: window) == .falling)
        #expect(GrowthPattern.of(samples([10, 12, 14]), window: window) == .unknown)  // 10 s of a 60 s window
    }

    @Test func peerEvidenceSubtractsTheFINFromRecvQ() {
        func record(_ port: UInt16, recvQ: UInt32, state: TCPState = .closeWait, remote: Endpoint? = nil)
            -> SocketRecord
        {
            SocketRecord(
                family: .inet, state: state, local: Endpoint(address: .v4(127, 0, 0, 1), port: port),
                remote: remote ?? peer, inode: UInt64(port), uid: 0, recvQ: recvQ, sendQ: 0)
        }
        let closeWait = [
            record(40001, recvQ: 1), record(40002, recvQ: 301), record(40003, recvQ: 0),
            record(40004, recvQ: 5, remote: Endpoint(address: .v4(10, 0, 0, 8), port: 8080)),
        ]
        let established = [record(40010, recvQ: 0, state: .established)]
        let e = PeerEvidence(peer: peer, closeWait: closeWait, established: established)
        #expect(e.closeWait == 3)
        #expect(e.unread == 1)
        #expect(e.unreadBytes == 300)
        #expect(e.endRead == 1)
        #expect(e.established == 1)
        #expect(e.localPorts == 40001...40003)
    }

    @Test func thePeerFilterIsWhatTheKernelAudits() {
        // [cond][jmp][cond]: conditions of 16 bytes (IPv4), a 4-byte jump that leaps to the end.
        let program = InetDiag.peerFilter([peer, Endpoint(address: .v4(127, 0, 0, 1), port: 9)])
        #expect(program.count == 16 + 4 + 16)
        #expect(Array(program[0..<4]) == [8, 16, 20, 0])  // D_COND, yes: next op, no: past the jump
        #expect(Array(program[16..<20]) == [1, 4, 20, 0])  // JMP, yes 4 (audit), no: to the end
        #expect(Array(program[20..<24]) == [8, 16, 20, 0])  // last: no leaps past the end (reject)
        #expect(Array(program[24..<28]) == [2, 32, 0, 0])  // AF_INET, /32
    }
}

@Suite struct ProcNetSnmpTests {
    @Test func theTCPValuesLineIsFoundAfterItsHeader() {
        let text =
            "Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm RtoMin InSegs OutSegs\nTcp: 1 200 11792156 11791584\nUdp: InDatagrams\nUdp: 5\n"
        #expect(ProcNetSnmp.tcpCounters(Array(text.utf8)) == Array("Tcp: 1 200 11792156 11791584".utf8))
        #expect(ProcNetSnmp.tcpCounters(Array("Tcp: only a header\n".utf8)) == nil)
        #expect(ProcNetSnmp.tcpCounters([]) == nil)
    }
}
