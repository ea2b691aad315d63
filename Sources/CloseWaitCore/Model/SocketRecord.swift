/// SocketRecord is one TCP socket as the kernel reports it, from either netlink sock_diag or
/// /proc/net/tcp{,6}. Both sources fill every field but `cookie`, which only netlink knows.
public struct SocketRecord: Hashable, Sendable {
    // Stored in an order that packs to 80 bytes (a daemon holds tens of thousands).
    public var local: Endpoint
    public var uid: UInt32
    public var remote: Endpoint
    public var recvQ: UInt32
    public var sendQ: UInt32
    /// The socket inode (the number in the `socket:[N]` fd link); 0 when no file exists yet,
    /// e.g. a connection still in a listen backlog that was never accepted.
    public var inode: UInt64
    private var cookieValue: UInt64
    public var family: AddressFamily
    public var state: TCPState
    private var hasCookie: Bool

    /// The kernel's socket cookie (netlink only; nil from /proc/net/tcp).
    public var cookie: UInt64? {
        get { hasCookie ? cookieValue : nil }
        set {
            hasCookie = newValue != nil
            cookieValue = newValue ?? 0
        }
    }

    public init(
        family: AddressFamily, state: TCPState, local: Endpoint, remote: Endpoint,
        inode: UInt64, uid: UInt32, recvQ: UInt32, sendQ: UInt32, cookie: UInt64? = nil
    ) {
        self.family = family
        self.state = state
        self.local = local
        self.remote = remote
        self.inode = inode
        self.uid = uid
        self.recvQ = recvQ
        self.sendQ = sendQ
        self.cookieValue = cookie ?? 0
        self.hasCookie = cookie != nil
    }

    /// The record without the netlink-only cookie, for comparing the two sources.
    public var withoutCookie: SocketRecord {
        var copy = self
        copy.cookie = nil
        return copy
    }
}

/// SocketSource names where socket records came from.
public enum SocketSource: String, Sendable, CaseIterable {
    case netlink
    case proc
    /// The eBPF scanner's iterator pass over every process's open files.
    case ebpf
}
