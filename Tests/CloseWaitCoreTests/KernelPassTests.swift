import Testing

@testable import CloseWaitCore

/// The eBPF scanner's pure parts: the iterator's records, their join into sockets and
/// holders, when to pass again, the holders' details, and the load failure's one line.
struct KernelPassTests {
    /// One 88-byte record as the iterator writes it (cw_record.h).
    static func bytes(
        sock: UInt64, inode: UInt64, tgid: UInt32, fd: UInt32 = 3, netns: UInt32 = 4_026_531_840,
        state: UInt8 = 8, family: UInt16 = 2, local: [UInt8] = [127, 0, 0, 1], remote: [UInt8] = [127, 0, 0, 1],
        sport: UInt16 = 40000, dport: UInt16 = 8080, rq: UInt32 = 1, since: UInt64 = 0, flags: UInt8 = 0
    ) -> [UInt8] {
        var out = [UInt8]()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        put(sock)
        put(inode)
        put(since)
        put(tgid)
        put(fd)
        put(netns)
        put(UInt32(1000))
        put(rq)
        put(UInt32(0))
        put(family)
        put(sport)
        put(dport)
        out += [state, flags]
        out += local + [UInt8](repeating: 0, count: 16 - local.count)
        out += remote + [UInt8](repeating: 0, count: 16 - remote.count)
        return out
    }

    static func decode(_ bytes: [UInt8]) -> KernelPassFormat.Decoded {
        bytes.withUnsafeBytes { KernelPassFormat.decode($0) }
    }

    /// The iterator's bytes read in one go, as the scanner's builder joins them.
    static func pass(_ bytes: [UInt8], ownNetns: UInt64, onlyOwn: Bool = false) -> KernelPass {
        var builder = KernelPass.Builder(ownNetns: ownNetns, onlyOwn: onlyOwn)
        bytes.withUnsafeBytes { builder.feed($0) }
        return builder.finish()
    }

    @Test func recordsDecodeFieldForField() {
        let v6: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let decoded = Self.decode(
            Self.bytes(sock: 0xffff_8880_0000_1000, inode: 501, tgid: 4242, fd: 7, since: 3_000_000_000)
                + Self.bytes(sock: 2, inode: 502, tgid: 4242, family: 10, local: v6, remote: v6, rq: 3))
        #expect(decoded.malformed == 0 && decoded.entries.count == 2)
        let first = decoded.entries[0]
        #expect(first.tgid == 4242 && first.fd == 7 && first.enteredNs == 3_000_000_000)
        #expect(first.record.inode == 501 && first.record.state == .closeWait && first.record.recvQ == 1)
        #expect(
            first.record.local.description == "127.0.0.1:40000" && first.record.remote.description == "127.0.0.1:8080")
        #expect(first.record.cookie == nil && first.record.uid == 1000)
        #expect(
            decoded.entries[1].record.family == .inet6 && decoded.entries[1].record.remote.description == "[::1]:8080")
    }

    @Test func aShortTailAnUnknownFamilyOrStateIsCountedNotTrusted() {
        let decoded = Self.decode(
            Self.bytes(sock: 1, inode: 1, tgid: 1, family: 1) + Self.bytes(sock: 2, inode: 2, tgid: 1, state: 99)
                + Self.bytes(sock: 3, inode: 3, tgid: 1) + [1, 2, 3])
        #expect(decoded.entries.map(\.record.inode) == [3])
        #expect(decoded.malformed == 3)
    }

    @Test func aPassJoinsHoldersNamespacesAndEntryTimes() {
        let own: UInt32 = 4_026_531_840
        let bytes =
            // One socket shared by a parent and its forked child, and dup'ed in the parent.
            Self.bytes(sock: 10, inode: 501, tgid: 100, fd: 3, since: 2_500_000_000)
            + Self.bytes(sock: 10, inode: 501, tgid: 100, fd: 9, since: 2_500_000_000)
            + Self.bytes(sock: 10, inode: 501, tgid: 101, fd: 3, since: 2_500_000_000)
            // A container's socket.
            + Self.bytes(sock: 11, inode: 601, tgid: 200, netns: own + 7)
            // A connection in the accept queue of a listener two workers share.
            + Self.bytes(sock: 12, inode: 0, tgid: 300, flags: 1)
            + Self.bytes(sock: 12, inode: 0, tgid: 301, flags: 1)
        let pass = Self.pass(bytes, ownNetns: UInt64(own))
        #expect(pass.records.map(\.inode) == [501, 601, 0])
        #expect(pass.owners[501] == [100, 101] && pass.owners[601] == [200] && pass.owners[0].isEmpty)
        #expect(pass.holders == [100, 101, 200])
        #expect(pass.foreign == [601: UInt64(own) + 7] && pass.foreignNamespaces == 1)
        #expect(pass.enteredAt == [501: 2.5])
        let onlyOwn = Self.pass(bytes, ownNetns: UInt64(own), onlyOwn: true)
        #expect(onlyOwn.records.map(\.inode) == [501, 0] && onlyOwn.foreign.isEmpty)
    }

    @Test func aPassReadInChunksOfAnySizeIsThePassReadWhole() {
        var bytes = [UInt8]()
        for i in 0..<50 {
            let n = i % 40
            bytes += Self.bytes(sock: UInt64(n), inode: UInt64(500 + n), tgid: UInt32(100 + i % 3))
        }
        // Whole: every record decoded alone, then joined in order.
        var joined = KernelPass.Builder(ownNetns: 4_026_531_840)
        for entry in Self.decode(bytes).entries { joined.add(entry) }
        let whole = joined.finish()
        for size in [1, 7, 87, 88, 89, 1000] {
            var builder = KernelPass.Builder(ownNetns: 4_026_531_840)
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + size)
                bytes[start..<end].withUnsafeBytes { builder.feed($0) }
                start = end
            }
            let pass = builder.finish()
            #expect(
                pass.records == whole.records && pass.owners == whole.owners && pass.malformed == 0, "chunks of \(size)"
            )
        }
        var cut = KernelPass.Builder(ownNetns: 0)
        Array(bytes.prefix(100)).withUnsafeBytes { cut.feed($0) }
        #expect(cut.finish().malformed == 1)
    }

    @Test func socketsTheTableListsAndNoFileLeadsToAreAddedUnowned() {
        var pass = Self.pass(
            Self.bytes(sock: 10, inode: 501, tgid: 100) + Self.bytes(sock: 12, inode: 0, tgid: 300, flags: 1),
            ownNetns: 4_026_531_840)
        let table =
            pass.records + [
                // In flight in a unix socket's queue (SCM_RIGHTS): an inode, no fd anywhere.
                SocketRecord(
                    family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 1),
                    remote: Endpoint(address: .v4(127, 0, 0, 1), port: 2), inode: 777, uid: 0, recvQ: 1, sendQ: 0,
                    cookie: 5),
                // Another backlog connection the walk did not reach (addresses differ).
                SocketRecord(
                    family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 3),
                    remote: Endpoint(address: .v4(127, 0, 0, 1), port: 4), inode: 0, uid: 0, recvQ: 1, sendQ: 0),
            ]
        pass.addUnowned(pass.unseen(in: table))
        #expect(pass.records.map(\.inode) == [501, 0, 777, 0] && pass.unseen == 2)
        #expect(pass.owners[777].isEmpty && pass.records[2].cookie == nil)
    }

    @Test func aPassIsReusedUntilTheCountersMoveAnAuditIsDueOrItIsInvalidated() {
        var schedule = PassSchedule(auditInterval: 300)
        #expect(schedule.due(now: 0, generation: 5) == .first)
        schedule.passed(now: 0, generation: 5)
        #expect(schedule.due(now: 5, generation: 5) == nil)
        #expect(schedule.due(now: 10, generation: 6) == .changed)
        schedule.passed(now: 10, generation: 6)
        #expect(schedule.due(now: 309, generation: 6) == nil)
        #expect(schedule.due(now: 310, generation: 6) == .audit)
        schedule.invalidate()
        #expect(schedule.due(now: 15, generation: 6) == .retry)
        schedule.passed(now: 15, generation: 6)
        #expect(schedule.due(now: 20, generation: 6) == nil)
        schedule.reset()
        #expect(schedule.due(now: 25, generation: 6) == .first)
        var everyTick = PassSchedule(auditInterval: 0)
        everyTick.passed(now: 0, generation: 1)
        #expect(everyTick.due(now: 5, generation: 1) == .audit)
    }

    @Test func holdersAreCountedEveryTickAndAReusedPidIsSeen() {
        let host = OwnerIndexTests.FakeFdTables()
        host.processes[100] = .init(start: 1000, comm: "java", sockets: [5: 501])
        host.processes[101] = .init(start: 1001, comm: "worker", sockets: [5: 501], otherFds: 3)
        var holders = HolderDetails()
        let first = holders.refresh([100, 101], source: host)
        #expect(first.details[100]?.comm == "java" && first.details[100]?.fdOpen == 11 && !first.holderGone)
        #expect(host.detailsRead == [100, 101])
        host.resetLog()
        host.processes[100]?.otherFds = 40
        let second = holders.refresh([100, 101], source: host)
        #expect(second.details[100]?.fdOpen == 41 && host.detailsRead.isEmpty && host.counted == [100, 101])
        // 101 exited and its pid went to another program: its details are read again.
        host.processes[101] = .init(start: 5000, comm: "other", sockets: [:])
        let third = holders.refresh([100, 101], source: host)
        #expect(third.holderGone && third.details[101]?.comm == "other")
        host.processes[100] = nil
        let fourth = holders.refresh([100, 101], source: host)
        #expect(fourth.holderGone && fourth.details[100] == nil && fourth.statistics.vanished == 1)
        // Before Linux 6.2 a count is not cheap: the holder's fd table is counted instead.
        host.countsAreCheap = false
        host.resetLog()
        let old = holders.refresh([101], source: host)
        #expect(old.details[101]?.fdOpen == 10 && host.scanned == [101])
    }

    /// libbpf's and the verifier's words as this kernel printed them (6.18, the compat object
    /// refused, and a test program refused by both).
    static let refusedLog = """
        libbpf: prog 'must_refuse': BPF program load failed: Permission denied
        libbpf: prog 'must_refuse': -- BEGIN PROG LOAD LOG --
        0: R1=ctx() R10=fp0
        ; return ctx->file->f_inode != 0; @ closewait.bpf.c:200
        0: (79) r1 = *(u64 *)(r1 +24)         ; R1=ptr_or_null_file(id=1)
        1: (79) r1 = *(u64 *)(r1 +32)
        R1 invalid mem access 'ptr_or_null_'
        processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
        -- END PROG LOAD LOG --
        libbpf: prog 'must_refuse': failed to load: -13
        libbpf: failed to load object 'closewait_bpf'
        libbpf: failed to load BPF skeleton 'closewait_bpf': -13
        libbpf: prog 'scan': BPF program load failed: Permission denied
        libbpf: prog 'scan': -- BEGIN PROG LOAD LOG --
        14: (85) call bpf_skc_to_tcp_sock#137
        R1 type=untrusted_ptr_ expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_
        processed 15 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
        -- END PROG LOAD LOG --
        libbpf: failed to load BPF skeleton 'closewait_compat_bpf': -13
        """

    @Test func theFirstRefusalIsSaidInTheVerifiersWords() {
        #expect(
            BPFLoadLog.reason(Self.refusedLog)
                == "the verifier refused program 'must_refuse': R1 invalid mem access 'ptr_or_null_'")
        #expect(
            BPFLoadLog.reason(
                """
                libbpf: prog 'scan': -- BEGIN PROG LOAD LOG --
                62: (07) r1 += -40
                63: <invalid CO-RE relocation>
                failed to resolve CO-RE relocation <byte_off> [26] struct sock.__sk_common.skc_v6_rcv_saddr
                processed 62 insns (limit 1000000)
                -- END PROG LOAD LOG --
                """)
                == "the verifier refused program 'scan': failed to resolve CO-RE relocation <byte_off> [26] struct sock.__sk_common.skc_v6_rcv_saddr"
        )
        // No verifier log: libbpf's own line (a kfunc this kernel lacks).
        #expect(
            BPFLoadLog.reason(
                """
                libbpf: extern (func ksym) 'bpf_rdonly_cast': not found in kernel or module BTFs
                libbpf: failed to load object 'closewait_bpf'
                """) == "extern (func ksym) 'bpf_rdonly_cast': not found in kernel or module BTFs")
        #expect(BPFLoadLog.reason("") == nil)
        // Bytes a kernel printed are escaped like any other.
        #expect(BPFLoadLog.reason("libbpf: failed to open \u{1b}[31m")?.contains("\u{1b}") == false)
    }

    @Test func theScannerSaysWhichPathAndWhy() {
        #expect(ScannerStatus(active: .ebpf, choice: .auto, attach: "tp_btf").summary == "ebpf (tp_btf)")
        let poll = ScannerStatus(active: .poll, choice: .auto, reason: "missing CAP_BPF")
        #expect(poll.summary == "poll (eBPF unavailable: missing CAP_BPF)")
        let entry = ScannerMessage.entry(poll)
        #expect(entry.messageID == MessageID.scannerPoll && entry.field("CLOSEWAIT_REASON") == "missing CAP_BPF")
        #expect(ScannerMessage.entry(ScannerStatus(active: .poll, choice: .poll)).field("CLOSEWAIT_REASON") == nil)
        #expect(
            ScannerMessage.entry(ScannerStatus(active: .ebpf, choice: .ebpf, attach: "raw_tp")).messageID
                == MessageID.scannerEBPF)
    }
}
