/// InetDiag builds NETLINK_SOCK_DIAG requests and decodes the kernel's replies
/// (include/uapi/linux/inet_diag.h, include/uapi/linux/netlink.h). Every message is
/// bounds-checked before it is read; the kernel's length fields are not trusted.
public enum InetDiag {
    public static let netlinkHeaderSize = 16  // struct nlmsghdr
    public static let requestSize = 56  // struct inet_diag_req_v2
    public static let messageSize = 72  // struct inet_diag_msg
    public static let nlmsgError: UInt16 = 2  // NLMSG_ERROR
    public static let nlmsgDone: UInt16 = 3  // NLMSG_DONE
    public static let sockDiagByFamily: UInt16 = 20  // SOCK_DIAG_BY_FAMILY
    public static let tcpDiagGetSock: UInt16 = 18  // TCPDIAG_GETSOCK (the inet_diag_req v1 interface)
    public static let compatRequestSize = 60  // struct inet_diag_req
    public static let flagRequest: UInt16 = 0x1  // NLM_F_REQUEST
    public static let flagMulti: UInt16 = 0x2  // NLM_F_MULTI
    public static let flagDumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    public static let flagDump: UInt16 = 0x300  // NLM_F_ROOT | NLM_F_MATCH
    public static let ipprotoTCP: UInt8 = 6

    /// A dump request for every TCP socket of `family` whose state is in `states`; the kernel
    /// applies the state filter, so only matching sockets cross into user space.
    public static func dumpRequest(family: AddressFamily, states: Set<TCPState>, sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(netlinkHeaderSize + requestSize)
        bytes.appendHost(UInt32(netlinkHeaderSize + requestSize))  // nlmsg_len
        bytes.appendHost(sockDiagByFamily)  // nlmsg_type
        bytes.appendHost(flagRequest | flagDump)  // nlmsg_flags
        bytes.appendHost(sequence)  // nlmsg_seq
        bytes.appendHost(UInt32(0))  // nlmsg_pid (kernel)
        bytes.append(family.rawValue)  // sdiag_family
        bytes.append(ipprotoTCP)  // sdiag_protocol
        bytes.append(0)  // idiag_ext: no extensions
        bytes.append(0)  // pad
        bytes.appendHost(states.filterMask)  // idiag_states
        bytes.append(contentsOf: repeatElement(0, count: 48))  // inet_diag_sockid: any
        return bytes
    }

    /// The same request with a socket filter the kernel runs on every socket
    /// (INET_DIAG_REQ_BYTECODE, include/uapi/linux/inet_diag.h): only sockets whose remote
    /// end is one of `peers` cross into user space.
    public static func dumpRequest(family: AddressFamily, states: Set<TCPState>, sequence: UInt32, peers: [Endpoint])
        -> [UInt8]
    {
        var bytes = dumpRequest(family: family, states: states, sequence: sequence)
        let program = peerFilter(peers)
        let attributeLength = 4 + program.count
        bytes.appendHost(UInt16(attributeLength))  // nla_len
        bytes.appendHost(UInt16(1))  // nla_type: INET_DIAG_REQ_BYTECODE
        bytes.append(contentsOf: program)  // a multiple of 4: no padding
        bytes.replaceSubrange(0..<4, with: withUnsafeBytes(of: UInt32(bytes.count)) { Array($0) })
        return bytes
    }

    /// inet_diag bytecode accepting a socket whose remote address and port equal one of
    /// `peers`, laid out as `ss` compiles an OR (the kernel's audit follows the `yes` chain,
    /// so every jump target must lie on it): `[cond1][jmp][cond2][jmp]…[condN]`. A condition
    /// that holds goes on to its jump, which leaps to the end (accept); one that fails skips
    /// its jump to the next condition, the last one past the end (reject).
    public static func peerFilter(_ peers: [Endpoint]) -> [UInt8] {
        let conditions: [[UInt8]] = peers.map { peer in
            let address: [UInt8]
            let family: UInt8
            switch peer.address {
            case let .v4(a, b, c, d): address = [a, b, c, d]; family = AddressFamily.inet.rawValue
            case let .v6(high, low):
                address =
                    (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
                    + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
                family = AddressFamily.inet6.rawValue
            }
            let length = 4 + 8 + address.count  // op, hostcond, address
            var c = [UInt8]()
            c.append(8)  // code: INET_DIAG_BC_D_COND
            c.append(UInt8(length))  // yes: the next op
            c.appendHost(UInt16(length + 4))  // no: skip the jump that follows
            c.append(family)  // hostcond.family
            c.append(UInt8(address.count * 8))  // hostcond.prefix_len
            c.append(contentsOf: [0, 0])  // padding
            c.appendHost(Int32(peer.port))  // hostcond.port (host order)
            c.append(contentsOf: address)
            return c
        }
        var program = [UInt8]()
        for (i, condition) in conditions.enumerated() {
            program += condition
            guard i < conditions.count - 1 else { break }
            // This jump, the conditions after it, and the jumps between those.
            let later = conditions[(i + 1)...]
            let remaining = 4 + later.reduce(0) { $0 + $1.count } + 4 * (later.count - 1)
            program.append(1)  // code: INET_DIAG_BC_JMP (always takes `no`)
            program.append(4)  // yes: the next op (for the audit)
            program.appendHost(UInt16(remaining))  // no: the end, accept
        }
        return program
    }

    /// A dump request in the older TCPDIAG_GETSOCK form (struct inet_diag_req), which the
    /// kernel answers for both families in one walk of the TCP socket table
    /// (inet_diag_dump_compat sets the family to AF_UNSPEC), where SOCK_DIAG_BY_FAMILY takes
    /// one walk per family. Replies are the same inet_diag_msg, with type TCPDIAG_GETSOCK.
    public static func compatDumpRequest(states: Set<TCPState>, sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(netlinkHeaderSize + compatRequestSize)
        bytes.appendHost(UInt32(netlinkHeaderSize + compatRequestSize))
        bytes.appendHost(tcpDiagGetSock)
        bytes.appendHost(flagRequest | flagDump)
        bytes.appendHost(sequence)
        bytes.appendHost(UInt32(0))
        bytes.append(AddressFamily.inet.rawValue)  // idiag_family (ignored for dumps)
        bytes.append(0)  // idiag_src_len
        bytes.append(0)  // idiag_dst_len
        bytes.append(0)  // idiag_ext
        bytes.append(contentsOf: repeatElement(0, count: 48))  // inet_diag_sockid
        bytes.appendHost(states.filterMask)  // idiag_states
        bytes.appendHost(UInt32(0))  // idiag_dbs
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
        batch.records.reserveCapacity(bytes.count / 96)
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
                    if status < 0 { throw .kernel(errno: Int32(clamping: -Int64(status)), offset: offset) }
                }
                batch.done = true
                return batch
            case nlmsgError:
                guard length - netlinkHeaderSize >= 4 else {
                    throw .truncated(offset: offset, need: netlinkHeaderSize + 4, have: length)
                }
                let status = Int32(bitPattern: bytes.readHost(UInt32.self, at: body))
                if status == 0 { break }  // an acknowledgement, not an error
                throw .kernel(errno: Int32(clamping: -Int64(status)), offset: offset)
            case sockDiagByFamily, tcpDiagGetSock:
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
        let width = family == .inet ? 4 : 16
        return b.withUnsafeBytes { raw in
            func host32(_ at: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
            let sport = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: id, as: UInt16.self))
            let dport = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: id + 2, as: UInt16.self))
            let tail = o + 52  // idiag_expires, rqueue, wqueue, uid, inode
            return SocketRecord(
                family: family, state: state,
                local: Endpoint(address: IPAddress(b, at: id + 4, count: width), port: sport),
                remote: Endpoint(address: IPAddress(b, at: id + 20, count: width), port: dport),
                inode: UInt64(host32(tail + 16)),
                uid: host32(tail + 12),
                recvQ: host32(tail + 4),
                sendQ: host32(tail + 8),
                cookie: UInt64(host32(id + 44)) << 32 | UInt64(host32(id + 40)))
        }
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
        case let .truncated(o, need, have):
            "sock_diag: message at byte \(o) truncated: needs \(need) bytes, \(have) present"
        case let .badLength(o, l): "sock_diag: message at byte \(o) has impossible length \(l)"
        case let .unexpectedType(o, t): "sock_diag: unexpected netlink message type \(t) at byte \(o)"
        case let .unexpectedSequence(o, g, w): "sock_diag: message at byte \(o) has sequence \(g), expected \(w)"
        case let .unknownFamily(o, f): "sock_diag: unknown address family \(f) at byte \(o)"
        case let .unknownState(o, s): "sock_diag: unknown TCP state \(s) at byte \(o)"
        case let .kernel(e, o): "sock_diag: kernel returned error \(e) (errno) at byte \(o)"
        case let .dumpInterrupted(n):
            "sock_diag: dump interrupted by concurrent changes \(n) times in a row (NLM_F_DUMP_INTR)"
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
        return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
