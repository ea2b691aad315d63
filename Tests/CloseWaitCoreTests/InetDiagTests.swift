@testable import CloseWaitCore
import Testing

@Suite struct InetDiagTests {
    @Test func requestLayoutMatchesTheKernelStruct() {
        let request = InetDiag.dumpRequest(family: .inet6, states: [.closeWait], sequence: 7)
        #expect(request.count == 16 + 56)
        #expect(request.readHost(UInt32.self, at: 0) == 72)  // nlmsg_len
        #expect(request.readHost(UInt16.self, at: 4) == 20)  // SOCK_DIAG_BY_FAMILY
        #expect(request.readHost(UInt16.self, at: 6) == 0x301)  // REQUEST | DUMP
        #expect(request.readHost(UInt32.self, at: 8) == 7)  // seq
        #expect(request[16] == 10 && request[17] == 6)  // AF_INET6, IPPROTO_TCP
        #expect(request.readHost(UInt32.self, at: 20) == 1 << 8)  // CLOSE_WAIT bit
    }

    @Test func stateMaskCombinesStates() {
        #expect(Set<TCPState>([.closeWait, .established]).filterMask == (1 << 8 | 1 << 1))
    }

    @Test func decodesTheCapturedIPv4Dump() throws {
        let batch = try InetDiag.parse(Fixture.bytes("netlink-inet.bin"))
        #expect(batch.done)
        #expect(!batch.interrupted)
        #expect(batch.records.count == 3)
        #expect(batch.records.allSatisfy { $0.state == .closeWait && $0.family == .inet })
        // The connection waiting in the listen backlog has no file yet: inode 0.
        let backlog = try #require(batch.records.first { $0.inode == 0 })
        #expect(backlog.local == Endpoint(address: .v4(127, 0, 0, 1), port: 0x920B))
        #expect(backlog.remote.port == 0xA5BA)
        #expect(backlog.recvQ == 1)  // the peer's FIN counts as one byte
        let owned = batch.records.filter { $0.inode != 0 }.map(\.inode).sorted()
        #expect(owned == [20140, 20141])
        #expect(batch.records.allSatisfy { $0.cookie != nil })
    }

    @Test func decodesIPv6AndShowsV4MappedAsIPv4() throws {
        let batch = try InetDiag.parse(Fixture.bytes("netlink-inet6.bin"))
        #expect(batch.done)
        #expect(batch.records.count == 3)
        let loopback6 = IPAddress(networkBytes: [UInt8](repeating: 0, count: 15) + [1])!
        #expect(batch.records.filter { $0.remote.address == loopback6 }.count == 2)
        let mapped = try #require(batch.records.first { $0.inode == 20144 })
        #expect(mapped.family == .inet6)
        #expect(mapped.remote == Endpoint(address: .v4(127, 0, 0, 1), port: 0xABFF))
        #expect(mapped.remote.description == "127.0.0.1:44031")
    }

    @Test func bothSourcesDescribeTheSameCapturedSockets() throws {
        let fromNetlink =
            try InetDiag.parse(Fixture.bytes("netlink-inet.bin")).records
            + InetDiag.parse(Fixture.bytes("netlink-inet6.bin")).records
        let fromProc =
            try ProcNetTCP.parse(Fixture.text("proc-net-tcp.txt"), family: .inet, states: [.closeWait])
            + ProcNetTCP.parse(Fixture.text("proc-net-tcp6.txt"), family: .inet6, states: [.closeWait])
        #expect(Set(fromNetlink.map(\.withoutCookie)) == Set(fromProc))
        #expect(fromProc.count == 6)
    }

    @Test func truncatedInputIsRejectedWithTheOffset() throws {
        let dump = try Fixture.bytes("netlink-inet.bin")
        #expect(throws: InetDiagError.truncated(offset: 0, need: 124, have: 100)) {
            try InetDiag.parse(dump[0..<100])
        }
        #expect(throws: InetDiagError.truncated(offset: 0, need: 16, have: 10)) {
            try InetDiag.parse(dump[0..<10])
        }
    }

    @Test func impossibleLengthIsRejected() {
        var message = [UInt8]()
        message.appendHost(UInt32(8)); message.appendHost(UInt16(20)); message.appendHost(UInt16(2))
        message.appendHost(UInt32(1)); message.appendHost(UInt32(0))
        #expect(throws: InetDiagError.badLength(offset: 0, length: 8)) { try InetDiag.parse(message) }
    }

    @Test func shortDiagMessageIsRejected() {
        var message = [UInt8]()
        message.appendHost(UInt32(16 + 40)); message.appendHost(UInt16(20)); message.appendHost(UInt16(2))
        message.appendHost(UInt32(1)); message.appendHost(UInt32(0))
        message += [UInt8](repeating: 0, count: 40)
        #expect(throws: InetDiagError.truncated(offset: 0, need: 16 + 72, have: 56)) { try InetDiag.parse(message) }
    }

    @Test func netlinkErrorCarriesTheErrno() {
        var message = [UInt8]()
        message.appendHost(UInt32(36)); message.appendHost(InetDiag.nlmsgError); message.appendHost(UInt16(0))
        message.appendHost(UInt32(1)); message.appendHost(UInt32(0))
        message.appendHost(Int32(-13))  // -EACCES
        message += [UInt8](repeating: 0, count: 16)
        #expect(throws: InetDiagError.kernel(errno: 13, offset: 0)) { try InetDiag.parse(message) }
    }

    @Test func doneWithNegativeStatusIsAnError() {
        var message = [UInt8]()
        message.appendHost(UInt32(20)); message.appendHost(InetDiag.nlmsgDone); message.appendHost(UInt16(2))
        message.appendHost(UInt32(1)); message.appendHost(UInt32(0)); message.appendHost(Int32(-4))
        #expect(throws: InetDiagError.kernel(errno: 4, offset: 0)) { try InetDiag.parse(message) }
    }

    @Test func interruptedDumpIsFlagged() throws {
        var dump = try Fixture.bytes("netlink-inet.bin")
        // Set NLM_F_DUMP_INTR on the first message's flags.
        let flags = dump.readHost(UInt16.self, at: 6) | InetDiag.flagDumpInterrupted
        withUnsafeBytes(of: flags) {
            dump[6] = $0[0]; dump[7] = $0[1]
        }
        #expect(try InetDiag.parse(dump).interrupted)
    }

    @Test func wrongSequenceIsRejected() throws {
        let dump = try Fixture.bytes("netlink-inet.bin")
        let seq = dump.readHost(UInt32.self, at: 8)
        #expect(throws: InetDiagError.unexpectedSequence(offset: 0, got: seq, want: seq + 1)) {
            try InetDiag.parse(dump, sequence: seq + 1)
        }
    }

    @Test func unknownStateIsRejected() throws {
        var dump = try Fixture.bytes("netlink-inet.bin")
        dump[17] = 99
        #expect(throws: InetDiagError.unknownState(offset: 16, state: 99)) { try InetDiag.parse(dump) }
    }
}
