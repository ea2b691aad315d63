import CloseWaitCore
import Glibc

/// ProcessReader gathers a process's identity and details from /proc/<pid>/{stat,exe,cmdline,
/// status,cgroup,limits}. Only stat is required; the rest degrade to nil when unreadable.
/// Everything is read as bytes: comm, exe, cmdline and cgroup paths are chosen by the process.
public struct ProcessReader: Sendable {
    public var proc: ProcFS
    /// Whether to read /proc/<pid>/cmdline. Reading it takes the process's mmap lock, so it
    /// blocks behind a process stuck in D state; the daemon never shows a cmdline and turns
    /// it off, so nothing on its tick path can wait on another process.
    public var readsCmdline = true
    /// cmdline can be megabytes (ARG_MAX); what a person needs to recognise a process fits here.
    public static let cmdlineLimit = 4096

    /// The reader's own network namespace: a process in another one gets `netns` set.
    public let ownNetns: UInt64?

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
        ownNetns = (try? proc.readLink("self/ns/net")).flatMap { NamespaceLink.inode($0, type: "net") }
    }

    /// The identity from /proc/<pid>/stat: what the daemon keys its history by.
    public func stat(pid: Int32) throws -> ProcPidStat {
        try proc.stat(pid: pid)
    }

    public func details(pid: Int32, fdOpen: Int) throws -> ProcessDetails {
        let stat = try stat(pid: pid)
        let base = String(pid) + "/"
        var details = ProcessDetails(
            identity: ProcessIdentity(pid: pid, startTime: stat.startTime), comm: stat.comm, fdOpen: fdOpen)
        details.exe = (try? proc.readLink(base + "exe")).map { ByteString($0) }
        if readsCmdline, let raw = try? proc.read(base + "cmdline", limit: Self.cmdlineLimit) {
            var parts = raw.split(separator: 0, omittingEmptySubsequences: false).map { ByteString($0) }
            if parts.last?.isEmpty == true { parts.removeLast() }
            details.cmdline = parts
        }
        if let status = try? proc.read(base + "status", limit: 16384) {
            details.uid = try? ProcPidStatus.parseUID(status)
            details.innerPID = ProcPidStatus.innerPID(status)
        }
        if let link = try? proc.readLink(base + "ns/net"), let ns = NamespaceLink.inode(link, type: "net"),
            ns != ownNetns
        {
            details.netns = ns
        }
        if let cgroup = try? proc.read(base + "cgroup", limit: 65536) {
            details.unit = ProcPidCgroup.unit(cgroup)
            details.container = ContainerIdentity.fromCgroup(cgroup)
        }
        details.fdLimit = (try? ProcPidLimits.softOpenFiles(proc.read(base + "limits", limit: 8192))) ?? nil
        return details
    }
}

extension ProcFS {
    /// /proc/<pid>/stat, parsed.
    public func stat(pid: Int32) throws -> ProcPidStat {
        try ProcPidStat.parse(read("\(pid)/stat", limit: 4096))
    }

    /// Whether `identity`'s pid is still that process (the same start time), not a newcomer
    /// that reused the pid; false when it is gone or unreadable.
    public func isStill(_ identity: ProcessIdentity) -> Bool {
        (try? stat(pid: identity.pid).startTime) == identity.startTime
    }
}
