/// InetDiag builds NETLINK_SOCK_DIAG requests and decodes the kernel's replies
/// (include/uapi/linux/inet_diag.h, include/uapi/linux/netlink.h). Every message is
/// bounds-checked before it is read; the kernel's length fields are not trusted.
public enum InetDiag {
    public static let netlinkHeaderSize = 16        // struct nlmsghdr
    public static let requestSize = 56              // struct inet_diag_req_v2
    public static let messageSize = 72              // struct inet_diag_msg
    public static let nlmsgError: UInt16 = 2        // NLMSG_ERROR
    public static let nlmsgDone: UInt16 = 3         // NLMSG_DONE
    public static let sockDiagByFamily: UInt16 = 20 // SOCK_DIAG_BY_FAMILY
    public static let flagRequest: UInt16 = 0x1     // NLM_F_REQUEST
    public static let flagMulti: UInt16 = 0x2       // NLM_F_MULTI
    public static let flagDumpInterrupted: UInt16 = 0x10 // NLM_F_DUMP_INTR
    public static let flagDump: UInt16 = 0x300      // NLM_F_ROOT | NLM_F_MATCH
    public static let ipprotoTCP: UInt8 = 6

    /// A dump request for every TCP socket of `family` whose state is in `states`; the kernel
    /// applies the state filter, so only matching sockets cross into user space.
    public static func dumpRequest(family: AddressFamily, states: Set<TCPState>, sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(netlinkHeaderSize + requestSize)
        bytes.appendHost(UInt32(netlinkHeaderSize + requestSize))   // nlmsg_len
        bytes.appendHost(sockDiagByFamily)                         // nlmsg_type
        bytes.appendHost(flagRequest | flagDump)                   // nlmsg_flags
        bytes.appendHost(sequence)                                 // nlmsg_seq
        bytes.appendHost(UInt32(0))                                // nlmsg_pid (kernel)
        bytes.append(family.rawValue)                              // sdiag_family
        bytes.append(ipprotoTCP)                                   // sdiag_protocol
        bytes.append(0)                                            // idiag_ext: no extensions
        bytes.append(0)                                            // pad
        bytes.appendHost(states.filterMask)                        // idiag_states
        bytes.append(contentsOf: repeatElement(0, count: 48))      // inet_diag_sockid: any
        return bytes
    }

    /// What one receive buffer of a dump held.
    public struct Batch: Sendable {
        public var records: [SocketRecord] = []
        /// NLMSG_DONE was seen: the dump is complete.
        public var done = false
        /// Some message carried NLM_F_DUMP_INTR: the socket tables changed during the dump, and
        /// the result may be inconsistent; the caller must retry.
        public var interrupted = false
    }

    /// Decodes the netlink messages in one datagram of a sock_diag dump answer.
    public static func parse(_ buffer: some Collection<UInt8>, sequence: UInt32? = nil) throws(InetDiagError) -> Batch {
        let bytes = Array(buffer)
        var batch = Batch()
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= netlinkHeaderSize else {
                throw .truncated(offset: offset, need: netlinkHeaderSize, have: bytes.count - offset)
            }
            let length = Int(bytes.readHost(UInt32.self, at: offset))
            let type = bytes.readHost(UInt16.self, at: offset + 4)
            let flags = bytes.readHost(UInt16.self, at: offset + 6)
            let seq = bytes.readHost(UInt32.self, at: offset + 8)
            guard length >= netlinkHeaderSize else { throw .badLength(offset: offset, length: length) }
            guard length <= bytes.count - offset else {
                throw .truncated(offset: offset, need: length, have: bytes.count - offset)
            }
            if let sequence, seq != sequence { throw .unexpectedSequence(offset: offset, got: seq, want: sequence) }
            if flags & flagDumpInterrupted != 0 { batch.interrupted = true }
            let body = offset + netlinkHeaderSize
            switch type {
            case nlmsgDone:
                // The body is an int: 0, or a negative errno when the dump failed part way.
                if length - netlinkHeaderSize >= 4 {
                    let status = Int32(bitPattern: bytes.readHost(UInt32.self, at: body))
                    if status < 0 { throw .kernel(errno: -status, offset: offset) }
                }
                batch.done = true
                return batch
            case nlmsgError:
                guard length - netlinkHeaderSize >= 4 else {
                    throw .truncated(offset: offset, need: netlinkHeaderSize + 4, have: length)
                }
                let status = Int32(bitPattern: bytes.readHost(UInt32.self, at: body))
                if status == 0 { break } // an acknowledgement, not an error
                throw .kernel(errno: -status, offset: offset)
            case sockDiagByFamily:
                guard length - netlinkHeaderSize >= messageSize else {
                    throw .truncated(offset: offset, need: netlinkHeaderSize + messageSize, have: length)
                }
                batch.records.append(try decodeMessage(bytes, at: body))
            default:
                throw .unexpectedType(offset: offset, type: type)
            }
            // Messages are aligned to 4 bytes (NLMSG_ALIGN).
            offset += (length + 3) & ~3
        }
        return batch
    }

    /// Decodes one `struct inet_diag_msg` at `at`; the caller has checked that 72 bytes exist.
    static func decodeMessage(_ b: [UInt8], at o: Int) throws(InetDiagError) -> SocketRecord {
        guard let family = AddressFamily(rawValue: b[o]) else { throw .unknownFamily(offset: o, family: b[o]) }
        guard let state = TCPState(rawValue: b[o + 1]) else { throw .unknownState(offset: o, state: b[o + 1]) }
        let id = o + 4  // struct inet_diag_sockid
        let sport = UInt16(b[id]) << 8 | UInt16(b[id + 1])  // __be16
        let dport = UInt16(b[id + 2]) << 8 | UInt16(b[id + 3])
        let width = family == .inet ? 4 : 16
        guard let src = IPAddress(networkBytes: b[(id + 4)..<(id + 4 + width)]),
              let dst = IPAddress(networkBytes: b[(id + 20)..<(id + 20 + width)]) else {
            throw .unknownFamily(offset: o, family: b[o])
        }
        let cookieLow = UInt64(b.readHost(UInt32.self, at: id + 40))
        let cookieHigh = UInt64(b.readHost(UInt32.self, at: id + 44))
        let tail = o + 52
        return SocketRecord(
            family: family, state: state,
            local: Endpoint(address: src, port: sport),
            remote: Endpoint(address: dst, port: dport),
            inode: UInt64(b.readHost(UInt32.self, at: tail + 16)),
            uid: b.readHost(UInt32.self, at: tail + 12),
            recvQ: b.readHost(UInt32.self, at: tail + 4),
            sendQ: b.readHost(UInt32.self, at: tail + 8),
            cookie: cookieHigh << 32 | cookieLow)
    }
}

/// InetDiagError says what was wrong with a sock_diag answer and at which byte offset.
public enum InetDiagError: Error, Equatable, CustomStringConvertible {
    case truncated(offset: Int, need: Int, have: Int)
    case badLength(offset: Int, length: Int)
    case unexpectedType(offset: Int, type: UInt16)
    case unexpectedSequence(offset: Int, got: UInt32, want: UInt32)
    case unknownFamily(offset: Int, family: UInt8)
    case unknownState(offset: Int, state: UInt8)
    case kernel(errno: Int32, offset: Int)
    case dumpInterrupted(attempts: Int)

    public var description: String {
        switch self {
        case let .truncated(o, need, have): "sock_diag: message at byte \(o) truncated: needs \(need) bytes, \(have) present"
        case let .badLength(o, l): "sock_diag: message at byte \(o) has impossible length \(l)"
        case let .unexpectedType(o, t): "sock_diag: unexpected netlink message type \(t) at byte \(o)"
        case let .unexpectedSequence(o, g, w): "sock_diag: message at byte \(o) has sequence \(g), expected \(w)"
        case let .unknownFamily(o, f): "sock_diag: unknown address family \(f) at byte \(o)"
        case let .unknownState(o, s): "sock_diag: unknown TCP state \(s) at byte \(o)"
        case let .kernel(e, o): "sock_diag: kernel returned error \(e) (errno) at byte \(o)"
        case let .dumpInterrupted(n): "sock_diag: dump interrupted by concurrent changes \(n) times in a row (NLM_F_DUMP_INTR)"
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends an integer in host byte order (netlink headers are host-endian).
    mutating func appendHost<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value) { append(contentsOf: $0) }
    }

    /// Reads an integer in host byte order at a checked offset.
    func readHost<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count)
        var value = T.zero
        Swift.withUnsafeMutableBytes(of: &value) { raw in
            for i in 0..<MemoryLayout<T>.size { raw[i] = self[offset + i] }
        }
        return value
    }
}
