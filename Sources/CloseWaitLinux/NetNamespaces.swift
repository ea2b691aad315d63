import CloseWaitCore
import Glibc

/// NetNamespaces finds the host's network namespaces: the distinct `net:[INODE]` links of
/// /proc/<pid>/ns/net, each with one live member pid through which its TCP table can be read
/// (/proc/<member>/net/tcp{,6} shows the member's namespace; readable without privilege).
/// The daemon's own namespace is left out: netlink samples it. A full discovery (one readlink
/// per process) runs every `rescanInterval`; in between, each member is checked with one
/// readlink, and a namespace whose member left is looked for again at once.
public final class NetNamespaces {
    public let proc: ProcFS
    public var rescanInterval: Double
    public private(set) var own: UInt64?
    /// Foreign namespace inode -> a member pid.
    public private(set) var members: [UInt64: Int32] = [:]
    /// Named namespaces (`ip netns add`, bind-mounted under `namedRoot`) with no process in
    /// them: inode -> name. Their tables cannot be read through /proc, and entering them
    /// (setns) needs CAP_SYS_ADMIN; they are reported, not sampled.
    public private(set) var memberless: [UInt64: String] = [:]
    public var namedRoot = "/run/netns"
    private var lastScan: Double?

    public init(proc: ProcFS = ProcFS(), rescanInterval: Double = 10) {
        self.proc = proc
        self.rescanInterval = rescanInterval
        own = (try? proc.readLink("self/ns/net")).flatMap { NamespaceLink.inode($0, type: "net") }
    }

    /// The namespace of a process, or nil when it cannot be read.
    public func namespace(of pid: Int32) -> UInt64? {
        (try? proc.readLink("\(pid)/ns/net")).flatMap { NamespaceLink.inode($0, type: "net") }
    }

    /// The foreign namespaces now, with a member each.
    public func current(now: Double) -> [UInt64: Int32] {
        var stale = false
        for (ns, pid) in members where namespace(of: pid) != ns { stale = true }
        if stale || lastScan.map({ now - $0 >= rescanInterval }) ?? true { rescan(now: now) }
        return members
    }

    public func rescan(now: Double) {
        lastScan = now
        var found = [UInt64: Int32]()
        for pid in (try? proc.pids()) ?? [] {
            guard let ns = namespace(of: pid), ns != own, found[ns] == nil else { continue }
            found[ns] = pid
        }
        members = found
        var named = [UInt64: String]()
        if let dir = opendir(namedRoot) {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                var info = stat()
                guard stat(namedRoot + "/" + name, &info) == 0 else { continue }
                let ns = UInt64(info.st_ino)
                if ns != own, found[ns] == nil { named[ns] = name }
            }
        }
        memberless = named
    }
}
