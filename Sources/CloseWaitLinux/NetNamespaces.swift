import CloseWaitCore
import Glibc

/// NetNamespaces finds the host's network namespaces: the distinct `net:[INODE]` links of
/// every task's ns/net — /proc/<pid>/ns/net and, for a process with threads, each
/// /proc/<pid>/task/<tid>/ns/net (a thread can `unshare(CLONE_NEWNET)` alone and leak there
/// while its leader stays in the host's namespace) — each with one live member through which
/// its TCP table can be read (`<pid>` or `<pid>/task/<tid>`: /proc/<member>/net/tcp{,6} shows
/// that task's namespace; readable without privilege). The daemon's own namespace is left
/// out: netlink samples it. A full discovery runs every `rescanInterval`; in between, each
/// member is checked with one readlink, and a namespace whose member left is looked for again
/// at once.
public final class NetNamespaces {
    public let proc: ProcFS
    public var rescanInterval: Double
    public private(set) var own: UInt64?
    /// Foreign namespace inode -> a member task, as a path under the /proc root.
    public private(set) var members: [UInt64: String] = [:]
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
        namespace(ofTask: String(pid))
    }

    /// The namespace of a task (`<pid>` or `<pid>/task/<tid>`), or nil.
    public func namespace(ofTask path: String) -> UInt64? {
        (try? proc.readLink(path + "/ns/net")).flatMap { NamespaceLink.inode($0, type: "net") }
    }

    /// The foreign namespaces now, with a member each.
    public func current(now: Double) -> [UInt64: String] {
        var stale = false
        for (ns, member) in members where namespace(ofTask: member) != ns { stale = true }
        if stale || lastScan.map({ now - $0 >= rescanInterval }) ?? true { rescan(now: now) }
        return members
    }

    public func rescan(now: Double) {
        lastScan = now
        var found = [UInt64: String]()
        for pid in (try? proc.pids()) ?? [] {
            let leader = namespace(of: pid)
            if let ns = leader, ns != own, found[ns] == nil { found[ns] = String(pid) }
            for tid in threads(of: pid) where tid != pid {
                let path = "\(pid)/task/\(tid)"
                guard let ns = namespace(ofTask: path), ns != leader, ns != own, found[ns] == nil else { continue }
                found[ns] = path
            }
        }
        members = found
        var named = [UInt64: String]()
        if let dir = opendir(namedRoot) {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard name != ".", name != ".." else { continue }
                var info = stat()
                guard stat(namedRoot + "/" + name, &info) == 0 else { continue }
                let ns = UInt64(info.st_ino)
                if ns != own, found[ns] == nil { named[ns] = name }
            }
        }
        memberless = named
    }

    /// The thread ids of a process (its task directory). Every thread is looked at: one
    /// readlink each per discovery (about 2 µs), bounded by the kernel's own task limits.
    func threads(of pid: Int32) -> [Int32] {
        (try? ProcFS(root: proc.root + "/\(pid)/task").pids()) ?? []
    }
}
