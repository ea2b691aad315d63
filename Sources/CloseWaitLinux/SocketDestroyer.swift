import CLinuxShim
import CloseWaitCore
import Glibc

/// SocketDestroyer sends SOCK_DESTROY for exactly one process's CLOSE_WAIT sockets to the
/// given peers: the kernel's CLOSE_WAIT sockets to those peers (a filtered netlink dump),
/// only those whose inode is in that process's fd table now, only while the process is still
/// the one alerted on (same start time), each named by its full tuple and cookie. Only the
/// daemon's own network namespace: SOCK_DESTROY acts where the netlink socket lives. The fds
/// stay open — the process still has to close them — but its peers and the kernel are done.
public struct SocketDestroyer: Sendable {
    public var proc: ProcFS

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
    }

    public struct Result: Equatable, Sendable {
        public var destroyed = 0
        /// Refused, by why (`the kernel lacks CONFIG_INET_DIAG_DESTROY`, `CAP_NET_ADMIN missing`).
        public var refused: [String: Int] = [:]
        /// Left CLOSE_WAIT between the dump and the request (closed or reset meanwhile).
        public var gone = 0
        public init() {}
        public var refusedCount: Int { refused.values.reduce(0, +) }
    }

    /// The process must live in the daemon's network namespace (the caller checks: another
    /// namespace's sockets are not in this dump).
    public func destroy(_ identity: ProcessIdentity, peers: [Endpoint]) throws -> Result {
        var result = Result()
        let peers = Array(Set(peers)).sorted { $0.description < $1.description }.prefix(8)
        guard !peers.isEmpty else { return result }
        var diag = NetlinkSockDiag()
        var records = [SocketRecord]()
        for family in [AddressFamily.inet, .inet6] {
            records += try diag.dump(family: family, states: [.closeWait], peers: Array(peers))
        }
        let inodes = Set(records.map(\.inode)).subtracting([0])
        let held = Set(try FdScanner(proc: proc).scan(pid: identity.pid, wanted: inodes).sockets.map(\.inode))
        // The pid must still be the process alerted on, not a newcomer that reused it.
        guard (try? ProcPidStat.parse(proc.read("\(identity.pid)/stat", limit: 4096)).startTime) == identity.startTime
        else { return result }
        let mine = records.filter { $0.state == .closeWait && held.contains($0.inode) }
        for record in mine {
            switch try Self.send(record) {
            case 0: result.destroyed += 1
            case ENOENT: result.gone += 1
            case EOPNOTSUPP: result.refused["the kernel lacks CONFIG_INET_DIAG_DESTROY", default: 0] += 1
            case EPERM, EACCES: result.refused["CAP_NET_ADMIN missing", default: 0] += 1
            case let code: result.refused[String(cString: strerror(code)), default: 0] += 1
            }
        }
        return result
    }

    /// One SOCK_DESTROY; the kernel's errno (0: destroyed).
    static func send(_ record: SocketRecord) throws -> Int32 {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), cw_netlink_sock_diag)
        guard fd >= 0 else { throw Errno(errno, call: "socket(AF_NETLINK, NETLINK_SOCK_DIAG)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sequence = UInt32.random(in: 1...UInt32.max)
        let request = SockDestroy.request(record, sequence: sequence)
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = request.withUnsafeBytes { raw in
            withUnsafePointer(to: &kernel) { address in
                address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == request.count else { throw Errno(errno, call: "sendto(SOCK_DESTROY)") }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno(errno, call: "recv(SOCK_DESTROY)")
            }
            if let code = SockDestroy.ackErrno(Array(buffer[0..<n]), sequence: sequence) { return code }
        }
    }
}
