/// SockDestroy is the SOCK_DESTROY request (include/uapi/linux/sock_diag.h, Linux 4.5+ with
/// CONFIG_INET_DIAG_DESTROY, CAP_NET_ADMIN in the socket's network namespace): one exact
/// socket named by its full inet_diag_sockid — family, both addresses and ports, and its
/// cookie, which the kernel checks, so a socket reused for another connection is never hit.
public enum SockDestroy {
    public static let messageType: UInt16 = 21  // SOCK_DESTROY
    static let flagAck: UInt16 = 0x4  // NLM_F_ACK

    /// The request for `record` (state CLOSE_WAIT only: the kernel matches the state mask).
    public static func request(_ record: SocketRecord, sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.appendHost(UInt32(InetDiag.netlinkHeaderSize + InetDiag.requestSize))
        bytes.appendHost(messageType)
        bytes.appendHost(InetDiag.flagRequest | flagAck)
        bytes.appendHost(sequence)
        bytes.appendHost(UInt32(0))
        bytes.append(record.family.rawValue)
        bytes.append(6)  // IPPROTO_TCP
        bytes.append(0)
        bytes.append(0)
        bytes.appendHost(Set([TCPState.closeWait]).filterMask)
        bytes += withUnsafeBytes(of: record.local.port.bigEndian) { Array($0) }
        bytes += withUnsafeBytes(of: record.remote.port.bigEndian) { Array($0) }
        bytes += padded(record.local.address.networkBytes(family: record.family))
        bytes += padded(record.remote.address.networkBytes(family: record.family))
        bytes.appendHost(UInt32(0))  // idiag_if
        let cookie = record.cookie ?? UInt64.max  // INET_DIAG_NOCOOKIE: the kernel skips the check
        bytes.appendHost(UInt32(truncatingIfNeeded: cookie))
        bytes.appendHost(UInt32(truncatingIfNeeded: cookie >> 32))
        return bytes
    }

    static func padded(_ address: [UInt8]) -> [UInt8] { address + [UInt8](repeating: 0, count: 16 - address.count) }

    /// The errno of the kernel's acknowledgement (0: destroyed), or nil when `bytes` is not an
    /// NLMSG_ERROR answer to `sequence`.
    public static func ackErrno(_ bytes: [UInt8], sequence: UInt32) -> Int32? {
        guard bytes.count >= InetDiag.netlinkHeaderSize + 4 else { return nil }
        return bytes.withUnsafeBytes { raw -> Int32? in
            let type = raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
            let seq = raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            guard type == InetDiag.nlmsgError, seq == sequence else { return nil }
            return -raw.loadUnaligned(fromByteOffset: InetDiag.netlinkHeaderSize, as: Int32.self)
        }
    }
}

extension IPAddress {
    /// The address as the kernel keeps it for a socket of `family`: 4 bytes for AF_INET, 16
    /// for AF_INET6 (an IPv4 address of a dual-stack socket as `::ffff:a.b.c.d`).
    public func networkBytes(family: AddressFamily) -> [UInt8] {
        switch (self, family) {
        case let (.v4(a, b, c, d), .inet): return [a, b, c, d]
        case let (.v4(a, b, c, d), .inet6): return [UInt8](repeating: 0, count: 10) + [0xff, 0xff, a, b, c, d]
        case let (.v6(high, low), _):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }
}
