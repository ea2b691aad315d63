import Testing

@testable import CloseWaitCore

/// SOCK_DESTROY's request names the socket as the kernel keeps it (family, tuple, cookie).
@Suite struct SockDestroyTests {
    @Test func theRequestNamesTheExactSocket() {
        let record = SocketRecord(
            family: .inet6, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 40000),
            remote: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), inode: 9, uid: 0, recvQ: 1, sendQ: 0,
            cookie: 0x1122_3344_5566_7788)
        let bytes = SockDestroy.request(record, sequence: 7)
        #expect(bytes.count == 16 + 56)
        #expect(bytes[4] == 21 && bytes[6] == 0x5)  // SOCK_DESTROY, NLM_F_REQUEST|NLM_F_ACK
        #expect(bytes[16] == 10 && bytes[17] == 6)  // AF_INET6, IPPROTO_TCP
        #expect(Array(bytes[24..<28]) == [0x9c, 0x40, 0x1f, 0x90])  // ports, network order
        // A dual-stack socket's IPv4 peer as the kernel keeps it: ::ffff:127.0.0.1.
        #expect(Array(bytes[28..<44]) == [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 127, 0, 0, 1])
        #expect(Array(bytes[64..<72]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])  // the cookie
        #expect(
            SockDestroy.ackErrno(
                [16, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], sequence: 7) == 1)
        #expect(
            SockDestroy.ackErrno([16, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sequence: 7) == nil)
    }
}
