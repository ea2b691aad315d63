@testable import CloseWaitCore
import Testing

/// Strings another user controls, and numbers an admin can get wrong: each renderer escapes
/// for its medium, nothing traps, no process is lost (issue 8).
@Suite struct HostileInputTests {
    @Test(arguments: [
        ("plain-java", "plain-java"),
        ("tab\there", "tab\\there"),
        ("\rSTOPPING=1\r\n", "\\rSTOPPING=1\\r\\n"),
        ("\u{1b}[2J\u{1b}[H", "\\x1b[2J\\x1b[H"),
        ("back\\slash", "back\\\\slash"),
        ("del\u{7f}", "del\\x7f"),
        ("c1\u{9b}31m", "c1\\xc2\\x9b31m"),
        ("bidi\u{202e}gnp.exe", "bidi\\u202egnp.exe"),
        ("zw\u{200b}j", "zw\\u200bj"),
        ("ünïcødé ✓", "ünïcødé ✓"),
        ("\u{301}leaky-java", "\\u0301leaky-java"),
        ("soft\u{ad}hyphen\u{e0041}", "soft\\u00adhyphen\\U000e0041"),
    ])
    func escapesEveryControlAndKeepsPrintableText(input: String, expected: String) {
        #expect(Escape.bytes(Array(input.utf8)) == expected)
        #expect(ByteString(input).escaped == expected)
    }

    @Test func invalidUTF8BecomesHexAndLossyKeepsTheRest() {
        let bytes: [UInt8] = [0x6a, 0xff, 0x61, 0xc3, 0x28, 0xe2, 0x82]
        #expect(Escape.bytes(bytes) == "j\\xffa\\xc3(\\xe2\\x82")
        #expect(ByteString(bytes).lossy == "j\u{fffd}a\u{fffd}(\u{fffd}")
    }

    @Test func lineEscapingLeavesBackslashesAndLimitsLength() {
        #expect(Escape.line("a\\x1b b\nc") == "a\\x1b b\\nc")
        let long = String(repeating: "é", count: 300)
        let cut = Escape.line(long, limit: 100)
        #expect(cut.utf8.count <= 100)
        #expect(cut.hasSuffix("…"))
    }

    // MARK: /proc/<pid>/stat with any comm

    static func statLine(pid: Int32, comm: [UInt8], start: UInt64 = 4242) -> [UInt8] {
        // Fields 3..21 then starttime (22) and a few more, as the kernel prints them.
        let tail =
            " S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \(start) 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
        return Array("\(pid) (".utf8) + comm + Array(")".utf8) + Array(tail.utf8)
    }

    @Test(arguments: [
        Array("\u{301}leaky-java".utf8), Array(") (x) 1 2 3".utf8), Array("a\nb".utf8), [0xff, 0xfe, 0x28],
        Array("((((".utf8), Array(" ".utf8), [], Array("\r\nSTOPPING=1".utf8),
    ])
    func statParsesAnyCommAsBytes(comm: [UInt8]) throws {
        let stat = try ProcPidStat.parse(Self.statLine(pid: 77, comm: comm))
        #expect(stat.pid == 77)
        #expect(stat.comm.bytes == comm)
        #expect(stat.startTime == 4242)
    }

    @Test func cgroupAndStatusAreReadAsBytes() throws {
        let cgroup: [UInt8] = Array("0::/system.slice/".utf8) + [0xff, 0x0d] + Array("evil.service\n".utf8)
        #expect(ProcPidCgroup.unit(cgroup)?.bytes == [0xff, 0x0d] + Array("evil.service".utf8))
        let status: [UInt8] = Array("Name:\t\u{301}x\r\nUmask:\t0022\nUid:\t1000\t1000\t1000\t1000\n".utf8)
        #expect(try ProcPidStatus.parseUID(status) == 1000)
    }

    /// A seeded generator, so a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    static func hasRawControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { Escape.needsEscape($0) }
    }

    /// Any bytes as comm, exe, cmdline and unit: stat parses, and the journal MESSAGE, the
    /// STATUS line and the table carry no raw control character and still show the process.
    @Test func anyBytesAsProcessNamesNeverLoseTheProcessOrReachAnOutputRaw() throws {
        var random = SplitMix(state: 0x5eed)
        let interesting: [UInt8] = [
            0x00, 0x0a, 0x0d, 0x1b, 0x28, 0x29, 0x5c, 0x7f, 0x9b, 0xc2, 0xe2, 0x80, 0xae, 0xff, 0xcc, 0x81,
        ]
        for round in 0..<2000 {
            func bytes(_ max: Int) -> [UInt8] {
                (0..<Int.random(in: 0...max, using: &random)).map { _ in
                    Bool.random(using: &random)
                        ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                }
            }
            var comm = bytes(15)
            comm.removeAll { $0 == 0 }  // the kernel never reports a NUL in comm
            let pid = Int32(1000 + round)
            let stat = try ProcPidStat.parse(Self.statLine(pid: pid, comm: comm))
            #expect(stat.comm.bytes == comm)

            let details = ProcessDetails(
                identity: ProcessIdentity(pid: pid, startTime: stat.startTime), comm: stat.comm,
                exe: ByteString(bytes(40)), cmdline: [ByteString(bytes(20)), ByteString(bytes(20))],
                uid: 1000, unit: ByteString(bytes(30)), fdOpen: 900, fdLimit: 1024)
            let peer = PeerCount(endpoint: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), count: 600)
            let status = ProcessStatus(
                details: details, count: 600, peers: [peer], growthPerMinute: 12, oldestAge: 60,
                since: 0, predictedExhaustion: 600)
            let event = AlertEvent(
                kind: .crossed, reason: .count, level: .critical, process: status, total: 600,
                value: 600, threshold: 500, rule: "default")
            let entry = AlertMessage.entry(event)
            #expect(!Self.hasRawControl(entry.message), "round \(round)")
            #expect(entry.message.contains("[\(pid)]"))
            // Fields keep the exact bytes for the journal.
            #expect(entry.fields.first { $0.0 == "CLOSEWAIT_COMM" }?.1.bytes == comm)
            #expect(entry.fields.first { $0.0 == "CLOSEWAIT_UNIT" }?.1 == details.unit)

            let line = StatusLine.render(statuses: [status], alerting: 1, total: 600)
            #expect(!Self.hasRawControl(line))

            let snapshot = Snapshot(
                source: .netlink, states: [.closeWait], sockets: [],
                processes: [ProcessEntry(details: details, inodes: [1, 2], peers: [peer])],
                statistics: ScanStatistics())
            let table = SnapshotReport.table(snapshot)
            let rows = table.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(rows.count == 4, "header, one row, total, and the final newline: \(rows)")
            #expect(rows[1].hasPrefix("\(pid)  "))
            #expect(!table.unicodeScalars.contains { $0 != "\n" && Escape.needsEscape($0) })
        }
    }

    // MARK: numbers

    @Test(arguments: ["1e20", "inf", "nan", "-5s", "0x10s", "1e3s", "5 parsecs", ".", "1..2s", "٣s", "+5s", "infinity"])
    func timeSpansAcceptOnlyPlainDecimals(text: String) {
        #expect(TimeSpan.parse(text) == nil)
    }

    @Test func timeSpansParseTheSystemdForms() {
        #expect(TimeSpan.parse("30") == 30)
        #expect(TimeSpan.parse("1.5min") == 90)
        #expect(TimeSpan.parse("1h 30min") == 5400)
        #expect(TimeSpan.parse("250ms") == 0.25)
        #expect(TimeSpan.parse(".5s") == 0.5)
        #expect(TimeSpan.parse(String(repeating: "9", count: 400) + "w") == nil)  // overflows to infinity
    }

    @Test(arguments: [
        Double.infinity, -Double.infinity, Double.nan, 1e300, Double.greatestFiniteMagnitude, 9.3e18,
        Double(Int.max), -1, 0, 0.0004,
    ])
    func formattingAnyNumberNeverTraps(seconds: Double) {
        #expect(!TimeSpan.format(seconds).isEmpty)
        #expect(!AlertMessage.fixed(seconds, 1).isEmpty)
        _ = Int(saturating: seconds)
    }

    @Test func saturatingConversion() {
        #expect(Int(saturating: .nan) == 0)
        #expect(Int(saturating: 1e300) == .max)
        #expect(Int(saturating: -1e300) == .min)
        #expect(Int(saturating: 41.9) == 41)
    }

    // MARK: globs on bytes

    @Test func globsMatchUntrustedBytes() {
        #expect(Glob.matches("java*", ByteString("java-pool")))
        #expect(Glob.matches("?ava", ByteString([0xff] + Array("ava".utf8))))
        #expect(!Glob.matches("\u{fffd}ava", ByteString([0xff] + Array("ava".utf8))))
        #expect(Glob.matches("[!a]x", ByteString([0xff, 0x78])))
        #expect(Glob.minimumLength("java*") == 4)
        #expect(Glob.minimumLength("a-very-long-name-here") == 21)
        #expect(Glob.minimumLength("[ab]?é*") == 4)
    }
}
