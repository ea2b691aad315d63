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
        guard proc.isStill(identity) else { return result }
        let mine = records.filter { $0.state == .closeWait && held.contains($0.inode) }
        for record in mine {
            switch try diag.destroy(record) {
            case 0: result.destroyed += 1
            case ENOENT: result.gone += 1
            case EOPNOTSUPP: result.refused["the kernel lacks CONFIG_INET_DIAG_DESTROY", default: 0] += 1
            case EPERM, EACCES: result.refused["CAP_NET_ADMIN missing", default: 0] += 1
            case let code: result.refused[String(cString: strerror(code)), default: 0] += 1
            }
        }
        return result
    }
}
