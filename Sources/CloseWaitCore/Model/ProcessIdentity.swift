/// ProcessIdentity is a process as the daemon tracks it: a pid alone is reused by the kernel,
/// pid plus start time (clock ticks since boot, /proc/<pid>/stat field 22) is not.
public struct ProcessIdentity: Hashable, Sendable, Comparable {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    public static func < (lhs: ProcessIdentity, rhs: ProcessIdentity) -> Bool {
        (lhs.pid, lhs.startTime) < (rhs.pid, rhs.startTime)
    }
}

/// ProcessDetails is what an operator needs to recognise a process.
public struct ProcessDetails: Hashable, Sendable {
    public var identity: ProcessIdentity
    /// comm, exe, cmdline and unit are chosen by the process or its manager: untrusted bytes.
    public var comm: ByteString
    public var exe: ByteString?
    public var cmdline: [ByteString]
    public var uid: UInt32?
    /// The systemd unit (`orders.service`, `session-3.scope`) from /proc/<pid>/cgroup.
    public var unit: ByteString?
    public var fdOpen: Int
    /// The soft RLIMIT_NOFILE; nil when unlimited or unreadable.
    public var fdLimit: UInt64?
    /// The container it runs in (from its cgroup), nil on the host.
    public var container: ContainerIdentity?
    /// Its pid inside its own pid namespace (`NSpid`), when that is not the host's.
    public var innerPID: Int32?
    /// Its network namespace (the inode of /proc/<pid>/ns/net), when not the daemon's own.
    public var netns: UInt64?
    /// Other processes holding exactly the same sampled sockets (forked children), when so
    /// many do that they are tracked as this one (`Snapshot.groupAbove`).
    public var sharedWith: SharedHolders?

    public init(
        identity: ProcessIdentity, comm: ByteString, exe: ByteString? = nil, cmdline: [ByteString] = [],
        uid: UInt32? = nil, unit: ByteString? = nil, fdOpen: Int = 0, fdLimit: UInt64? = nil
    ) {
        self.identity = identity
        self.comm = comm
        self.exe = exe
        self.cmdline = cmdline
        self.uid = uid
        self.unit = unit
        self.fdOpen = fdOpen
        self.fdLimit = fdLimit
    }

    public var pid: Int32 { identity.pid }
    /// `comm[pid]`, the way the journal and `ps` readers name a process; comm escaped.
    public var label: String { "\(comm.escaped)[\(identity.pid)]" }

    /// ` (container podman:3f2a1b4c5d6e, pid 7 inside)`, ` (pod shop/orders-7d9f-x2k4p,
    /// container app, pid 7 inside)`, or "" on the host.
    public var whereItRuns: String {
        var parts = [String]()
        if let container { parts.append(container.described) }
        if let innerPID {
            parts.append(container == nil ? "pid \(innerPID) in its namespace" : "pid \(innerPID) inside")
        }
        if let netns { parts.append("netns \(netns)") }
        if let sharedWith { parts.append(sharedWith.description) }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    }
}

/// SharedHolders are the other processes holding exactly a tracked process's sockets.
public struct SharedHolders: Hashable, Sendable {
    /// How many (the tracked process not included).
    public var count: Int
    /// The first few of them, ascending.
    public var pids: [Int32]

    public init(count: Int, pids: [Int32]) {
        self.count = count
        self.pids = pids
    }

    /// `its sockets shared by 9999 other processes (21001, 21002, 21003, …)`.
    public var description: String {
        "its sockets shared by \(count) other processes (" + pids.map(String.init).joined(separator: ", ")
            + (count > pids.count ? ", …)" : ")")
    }
}
