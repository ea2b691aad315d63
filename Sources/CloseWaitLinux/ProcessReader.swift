import CloseWaitCore
import Glibc

/// ProcessReader gathers a process's identity and details from /proc/<pid>/{stat,exe,cmdline,
/// status,cgroup,limits}. Only stat is required; the rest degrade to nil when unreadable.
public struct ProcessReader: Sendable {
    public var proc: ProcFS

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
    }

    /// The identity from /proc/<pid>/stat: what the daemon keys its history by.
    public func stat(pid: Int32) throws -> ProcPidStat {
        try ProcPidStat.parse(proc.readText("\(pid)/stat"))
    }

    public func details(pid: Int32, fdOpen: Int) throws -> ProcessDetails {
        let stat = try stat(pid: pid)
        let base = String(pid) + "/"
        var details = ProcessDetails(identity: ProcessIdentity(pid: pid, startTime: stat.startTime), comm: stat.comm, fdOpen: fdOpen)
        details.exe = try? proc.readLink(base + "exe")
        if let raw = try? proc.read(base + "cmdline") {
            details.cmdline = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if details.cmdline.last == "" { details.cmdline.removeLast() }
        }
        details.uid = try? ProcPidStatus.parseUID(proc.readText(base + "status"))
        details.unit = (try? proc.readText(base + "cgroup")).flatMap(ProcPidCgroup.unit)
        details.fdLimit = (try? ProcPidLimits.softOpenFiles(proc.readText(base + "limits"))) ?? nil
        return details
    }
}
