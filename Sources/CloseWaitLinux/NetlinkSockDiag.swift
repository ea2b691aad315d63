import CLinuxShim
import CloseWaitCore
import Glibc

/// NetlinkSockDiag dumps TCP sockets from the kernel over a NETLINK_SOCK_DIAG socket, with the
/// state filter applied in the kernel.
public struct NetlinkSockDiag {
    /// Each datagram received, in order, when recording (`snapshot --dump-netlink`).
    public private(set) var recorded: [[UInt8]] = []
    public var record = false
    /// How many times an interrupted dump (NLM_F_DUMP_INTR) is retried before giving up.
    public var maxAttempts = 3
    private var sequence: UInt32 = 1
    /// The last dump's size: the next one reserves that much, so a large result is not
    /// built by repeated doubling (the daemon's peak memory).
    private var lastCount = 0
    /// The longest a dump waits for the kernel's next answer before failing the tick (the
    /// main queue must never wait forever).
    public var receiveTimeout = 5.0

    public init() {}

    /// All sockets of `family` whose state is in `states`; nil family: both families in one
    /// kernel walk (the TCPDIAG_GETSOCK request).
    /// With `peers` (and a family), only sockets whose remote end is one of them: the kernel
    /// runs an inet_diag bytecode filter (at most 8 peers).
    /// With `keep`, only the records it accepts are kept as the answer is read (the eBPF
    /// scanner's cross-check wants the few its pass lacks, not 50k records beside the pass).
    public mutating func dump(
        family: AddressFamily?, states: Set<TCPState>, peers: [Endpoint]? = nil,
        keep: ((SocketRecord) -> Bool)? = nil
    ) throws -> [SocketRecord] {
        var attempt = 0
        while true {
            attempt += 1
            let (records, interrupted) = try dumpOnce(family: family, states: states, peers: peers, keep: keep)
            if !interrupted { return records }
            if attempt >= maxAttempts { throw InetDiagError.dumpInterrupted(attempts: attempt) }
        }
    }

    private mutating func dumpOnce(
        family: AddressFamily?, states: Set<TCPState>, peers: [Endpoint]?, keep: ((SocketRecord) -> Bool)?
    ) throws -> ([SocketRecord], Bool) {
        let fd = try openSocket()
        defer { close(fd) }
        sequence &+= 1
        let seq = sequence
        let request: [UInt8]
        if let family, let peers {
            request = InetDiag.dumpRequest(family: family, states: states, sequence: seq, peers: Array(peers.prefix(8)))
        } else {
            request =
                family.map { InetDiag.dumpRequest(family: $0, states: states, sequence: seq) }
                ?? InetDiag.compatDumpRequest(states: states, sequence: seq)
        }
        try Self.send(request, on: fd)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var records = [SocketRecord]()
        if keep == nil { records.reserveCapacity(lastCount + lastCount / 8) }
        var interrupted = false
        while true {
            // MSG_TRUNC makes recv return the datagram's real length, so an oversized one is
            // detected instead of silently cut.
            var sender = sockaddr_nl()
            var senderLength = socklen_t(MemoryLayout<sockaddr_nl>.size)
            var n = 0
            while true {
                n = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &sender) { address in
                        address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_TRUNC), $0, &senderLength)
                        }
                    }
                }
                if n >= 0 { break }
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK {
                    throw Errno(
                        ETIMEDOUT, call: "recv(sock_diag): no answer from the kernel within \(receiveTimeout) s")
                }
                throw Errno(code, call: "recv(sock_diag)")
            }
            // Only the kernel (port id 0) answers a dump; anything else is not ours to decode.
            if sender.nl_pid != 0 { continue }
            guard n <= buffer.count else { throw InetDiagError.truncated(offset: 0, need: n, have: buffer.count) }
            if n == 0 { throw InetDiagError.truncated(offset: 0, need: InetDiag.netlinkHeaderSize, have: 0) }
            if record { recorded.append(Array(buffer[0..<n])) }
            let batch = try InetDiag.parse(buffer[0..<n], sequence: seq)
            if let keep { records += batch.records.filter(keep) } else { records.append(contentsOf: batch.records) }
            interrupted = interrupted || batch.interrupted
            if batch.done {
                if keep == nil { lastCount = records.count }
                return (records, interrupted)
            }
        }
    }

    /// A NETLINK_SOCK_DIAG socket whose receives give up after `receiveTimeout`.
    private func openSocket() throws -> Int32 {
        let fd = try retryingEINTR("socket(AF_NETLINK, NETLINK_SOCK_DIAG)") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), cw_netlink_sock_diag)
        }
        var timeout = timeval(
            tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - receiveTimeout.rounded(.down)) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends one request to the kernel (port id 0), whole.
    private static func send(_ request: [UInt8], on fd: Int32) throws {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = try retryingEINTR("sendto(sock_diag)") {
            request.withUnsafeBytes { raw in
                withUnsafePointer(to: &kernel) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
        }
        guard sent == request.count else { throw Errno(EIO, call: "sendto(sock_diag): short write") }
    }

    /// SOCK_DESTROY for exactly `record` (tuple and cookie); the kernel's errno, 0 when it was
    /// destroyed.
    public mutating func destroy(_ record: SocketRecord) throws -> Int32 {
        let fd = try openSocket()
        defer { close(fd) }
        sequence &+= 1
        let seq = sequence
        try Self.send(SockDestroy.request(record, sequence: seq), on: fd)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try retryingEINTR("recv(SOCK_DESTROY)") {
                buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            }
            if let code = SockDestroy.ackErrno(Array(buffer[0..<n]), sequence: seq) { return code }
        }
    }
}
