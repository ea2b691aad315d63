/// ProcPidStat is what we need from /proc/<pid>/stat (fs/proc/array.c `do_task_stat`).
public struct ProcPidStat: Equatable, Sendable {
    public var pid: Int32
    /// The task name the process chose (`prctl(PR_SET_NAME)`): up to 15 arbitrary bytes.
    public var comm: ByteString
    /// Field 22, `starttime`: clock ticks since boot when the process started. With the pid it
    /// identifies a process, since pids are reused.
    public var startTime: UInt64
    /// Field 3 is Z (zombie) or X (dead): it exited and holds no file any more, though its
    /// /proc entry stays until it is reaped.
    public var exited = false
    /// Field 4, `ppid`: its parent (0 for init and kthreadd; nil if the field is unreadable).
    public var parentPID: Int32?

    /// Parses the one-line file as bytes. `comm` may hold anything but NUL, including spaces,
    /// parentheses, newlines and invalid UTF-8, so the fields after it are counted from the
    /// last `)` and nothing is decoded as text.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ProcFileError) -> ProcPidStat {
        let line = Array(bytes)
        guard let open = line.firstIndex(of: UInt8(ascii: "(")), let close = line.lastIndex(of: UInt8(ascii: ")")),
            open < close
        else {
            throw .malformed(line: 1, key: "comm", detail: "no (comm) in stat")
        }
        guard let pid = ASCIIDecimal.parse(line[..<open].trimmingASCIISpaces, as: Int32.self) else {
            throw .malformed(line: 1, key: "pid", detail: "not a number")
        }
        let comm = ByteString(line[(open + 1)..<close])
        // After ")": field 3 (state) is the first; starttime is field 22, index 19 here.
        let rest = line[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard rest.count > 19, let start = ASCIIDecimal.parse(rest[19].trimmingASCIISpaces, as: UInt64.self) else {
            throw .malformed(line: 1, key: "starttime", detail: "field 22 missing or not a number")
        }
        var stat = ProcPidStat(pid: pid, comm: comm, startTime: start)
        stat.exited = rest[0].elementsEqual("Z".utf8) || rest[0].elementsEqual("X".utf8)
        stat.parentPID = ASCIIDecimal.parse(rest[1].trimmingASCIISpaces, as: Int32.self)
        return stat
    }

    public static func parse(_ text: String) throws(ProcFileError) -> ProcPidStat {
        try parse(Array(text.utf8))
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
