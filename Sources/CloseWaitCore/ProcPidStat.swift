/// ProcPidStat is what we need from /proc/<pid>/stat (fs/proc/array.c `do_task_stat`).
public struct ProcPidStat: Equatable, Sendable {
    public var pid: Int32
    public var comm: String
    /// Field 22, `starttime`: clock ticks since boot when the process started. With the pid it
    /// identifies a process, since pids are reused.
    public var startTime: UInt64

    /// Parses the one-line file. `comm` may hold spaces and parentheses, so the fields after it
    /// are counted from the last `)`.
    public static func parse(_ text: String) throws(ProcFileError) -> ProcPidStat {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"), open < close else {
            throw .malformed(line: 1, key: "comm", detail: "no (comm) in stat")
        }
        guard let pid = Int32(text[..<open].trimmingSpaces) else {
            throw .malformed(line: 1, key: "pid", detail: "not a number")
        }
        let comm = String(text[text.index(after: open)..<close])
        // After ")": field 3 (state) is the first; starttime is field 22, index 19 here.
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count > 19, let start = UInt64(rest[19]) else {
            throw .malformed(line: 1, key: "starttime", detail: "field 22 missing or not a number")
        }
        return ProcPidStat(pid: pid, comm: comm, startTime: start)
    }
}

/// ProcFileError names the line and key of a /proc file that could not be read.
public enum ProcFileError: Error, Equatable, CustomStringConvertible {
    case malformed(line: Int, key: String, detail: String)

    public var description: String {
        switch self {
        case let .malformed(line, key, detail): "line \(line): \(key): \(detail)"
        }
    }
}
