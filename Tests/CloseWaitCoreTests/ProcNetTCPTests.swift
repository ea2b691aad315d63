@testable import CloseWaitCore
import Testing

@Suite struct ProcNetTCPTests {
    static let header =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

    @Test func parsesTheCapturedFileAndFiltersByState() throws {
        let text = try Fixture.text("proc-net-tcp.txt")
        let closeWait = try ProcNetTCP.parse(text, family: .inet, states: [.closeWait])
        #expect(closeWait.count == 3)
        let listening = try ProcNetTCP.parse(text, family: .inet, states: [.listen])
        #expect(listening.count == 2)
        #expect(listening.contains { $0.local == Endpoint(address: .v4(0, 0, 0, 0), port: 2024) && $0.inode == 1456 })
    }

    /// Fed in chunks of any size, the stream gives what the whole text gives, keeps only the
    /// wanted states, and names the right line in an error (issue 17, row 3).
    @Test(arguments: [1, 7, 64, 150, 4096])
    func streamInChunksMatchesTheWholeText(chunk: Int) throws {
        for name in ["proc-net-tcp.txt", "proc-net-tcp6.txt"] {
            let text = try Fixture.text(name)
            let family: AddressFamily = name.contains("6") ? .inet6 : .inet
            let bytes = Array(text.utf8)
            for states: Set<TCPState> in [[.closeWait], [.listen, .established], Set(TCPState.allCases)] {
                var stream = ProcNetTCP.Stream(family: family, states: states)
                var start = 0
                while start < bytes.count {
                    try stream.feed(bytes[start..<min(bytes.count, start + chunk)])
                    start += chunk
                }
                #expect(try stream.finish() == ProcNetTCP.parse(text, family: family, states: states))
            }
        }
        let bad =
            Self.header
            + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
            + "   1: 0100007F:1F90 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
        var stream = ProcNetTCP.Stream(family: .inet, states: [.closeWait])
        #expect(throws: ProcNetTCPError.self) {
            for byte in Array(bad.utf8) { try stream.feed([byte]) }
            _ = try stream.finish()
        }
        do {
            _ = try ProcNetTCP.parse(bad, family: .inet, states: [.closeWait])
        } catch let ProcNetTCPError.malformed(line, field, _) {
            #expect(line == 3 && field == "st")
        }
    }

    /// A table of many sockets in unwanted states costs the stream no memory for them.
    @Test func streamKeepsOnlyWantedRecordsOfALargeTable() throws {
        var stream = ProcNetTCP.Stream(family: .inet, states: [.closeWait])
        try stream.feed(Array(Self.header.utf8))
        let timeWait = Array(
            "   1: 0100007F:1F90 0100007F:D431 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000\n"
                .utf8)
        let closeWait = Array(
            "   2: 0100007F:D431 0100007F:1F90 08 00000000:00000001 00:00000000 00000000  1000        0 77 1 0000000000000000 20 4 0 10 -1\n"
                .utf8)
        for i in 0..<20_000 { try stream.feed(i == 12_345 ? closeWait : timeWait) }
        let records = try stream.finish()
        #expect(records.map(\.inode) == [77])
        #expect(stream.lines == 20_001)
    }

    @Test func decodesAddressesQueuesUidAndInode() throws {
        let line =
            "   3: 0500000A:1F90 0600000A:D431 08 0000000A:00000001 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 0 10 -1\n"
        let records = try ProcNetTCP.parse(Self.header + line, family: .inet, states: [.closeWait])
        let record = try #require(records.first)
        #expect(record.local.description == "10.0.0.5:8080")
        #expect(record.remote.description == "10.0.0.6:54321")
        #expect(record.sendQ == 10 && record.recvQ == 1)
        #expect(record.uid == 1000 && record.inode == 4242)
        #expect(record.cookie == nil)
    }

    @Test func ipv6AndMappedAddresses() throws {
        let records = try ProcNetTCP.parse(Fixture.text("proc-net-tcp6.txt"), family: .inet6, states: [.closeWait])
        #expect(records.map(\.remote.address.description).sorted() == ["127.0.0.1", "::1", "::1"])
        let v6 =
            "   1: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:C000 08 00000000:00000000 00:00000000 00000000     0        0 7 1 0 20 4 0 10 -1\n"
        let parsed = try ProcNetTCP.parse(Self.header + v6, family: .inet6, states: [.closeWait])
        #expect(parsed.first?.local.description == "[2001:db8::1]:80")
        #expect(parsed.first?.remote.description == "[2001:db8::2]:49152")
    }

    @Test(arguments: [
        ("   0: 0100007F:1F90 0100007F:C2A2 ZZ 00000000:00000000 00:00000000 00000000 0 0 1 1", "st"),
        ("   0: 0100007F:1F90 0100007F 08 00000000:00000000 00:00000000 00000000 0 0 1 1", "rem_address"),
        ("   0: 0100007:1F90 0100007F:C2A2 08 00000000:00000000 00:00000000 00000000 0 0 1 1", "local_address"),
        ("   0: 0100007F:1F90 0100007F:C2A2 08 00000000 00:00000000 00000000 0 0 1 1", "tx_queue:rx_queue"),
        ("   0: 0100007F:1F90 0100007F:C2A2 08 00000000:00000000 00:00000000 00000000 x 0 1 1", "uid"),
        ("   0: 0100007F:1F90 0100007F:C2A2 08 00000000:00000000 00:00000000 00000000 0 0 -1 1", "inode"),
        ("   0: 0100007F:1F90 0100007F:C2A2 08", "columns"),
    ])
    func malformedLinesNameTheLineAndField(line: String, field: String) {
        #expect(throws: ProcNetTCPError.malformed(line: 2, field: field, text: line)) {
            try ProcNetTCP.parse(Self.header + line + "\n", family: .inet, states: [.closeWait])
        }
    }

    @Test func missingHeaderIsRejected() {
        #expect(throws: ProcNetTCPError.self) {
            try ProcNetTCP.parse(
                "   0: 0100007F:1F90 0100007F:C2A2 08 0:0 0:0 0 0 0 1 1\n", family: .inet, states: [.closeWait])
        }
    }
}
