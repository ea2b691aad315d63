@preconcurrency import CSystemd
import CloseWaitCore
@preconcurrency import Glibc

/// JournalWriter sends entries to the systemd journal with sd_journal_sendv(3), or, when no
/// journal listens, writes one line per entry to stderr. sd_journal_sendv returns 0 even when
/// journald is absent, so the socket is checked here instead. In a container, `stdout` writes
/// the same line to stdout and `json` one JSON object per line (for log shippers: the journal's
/// field names as keys).
public final class JournalWriter: Sendable {
    public enum Target: String, Sendable, CaseIterable {
        case auto, journal, stderr, stdout, json
    }

    public let usesJournal: Bool
    public let target: Target
    public let identifier: String

    public static let journalSocket = "/run/systemd/journal/socket"

    public init(target: Target = .auto, identifier: String = "closewaitd") {
        self.identifier = identifier
        self.target = target
        switch target {
        case .journal: usesJournal = true
        case .stderr, .stdout, .json: usesJournal = false
        case .auto: usesJournal = Self.journalListening()
        }
    }

    /// Whether journald's native socket exists and is a socket.
    public static func journalListening(path: String = journalSocket) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    public func send(_ entry: JournalEntry) {
        if usesJournal, sendToJournal(entry) { return }
        writeLine(entry)
    }

    /// MESSAGE is escaped to one line; the CLOSEWAIT_* fields go as their exact bytes
    /// (libsystemd sends a value holding a newline in the native protocol's binary-safe,
    /// length-prefixed form).
    func sendToJournal(_ entry: JournalEntry) -> Bool {
        var buffers = [
            "MESSAGE=" + Escape.line(entry.message), "PRIORITY=\(entry.priority.rawValue)",
            "SYSLOG_IDENTIFIER=" + identifier,
        ]
        .map { Array($0.utf8) }
        if let id = entry.messageID { buffers.append(Array(("MESSAGE_ID=" + id).utf8)) }
        for (name, value) in entry.fields { buffers.append(Array((name + "=").utf8) + value.bytes) }
        let result = withIOVecs(buffers) { sd_journal_sendv($0, Int32(buffers.count)) }
        return result >= 0
    }

    private func withIOVecs<R>(_ buffers: [[UInt8]], _ body: (UnsafePointer<iovec>) -> R) -> R {
        var vecs = [iovec]()
        vecs.reserveCapacity(buffers.count)
        func recurse(_ index: Int) -> R {
            if index == buffers.count { return vecs.withUnsafeBufferPointer { body($0.baseAddress!) } }
            return buffers[index].withUnsafeBytes { raw in
                vecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
                return recurse(index + 1)
            }
        }
        return recurse(0)
    }

    /// `closewaitd[PID]: warning: MESSAGE | MESSAGE_ID=… CLOSEWAIT_PID=…` — one line, fields last.
    public static func line(_ entry: JournalEntry, identifier: String = "closewaitd") -> String {
        let level = levelName(entry.priority)
        var fields = entry.messageID.map { ["MESSAGE_ID=" + $0] } ?? []
        fields += entry.fields.filter { !$0.1.isEmpty }.map { $0.0 + "=" + $0.1.escaped }
        let tail = fields.isEmpty ? "" : " | " + fields.joined(separator: " ")
        return "\(identifier)[\(getpid())]: \(level): \(Escape.line(entry.message))\(tail)\n"
    }

    /// `{"time":"2026-12-01T23:40:05.123Z","level":"warning","message":…,"MESSAGE_ID":…,
    /// "CLOSEWAIT_PID":"4242",…}`: one line; values escaped as in the text line (a process's
    /// bytes stay visible, never raw control characters), empty fields left out.
    public static func jsonLine(_ entry: JournalEntry, identifier: String = "closewaitd", wallTime: Double) -> String {
        var members: [(String, JSONValue)] = [
            ("time", .string(rfc3339(wallTime))), ("level", .string(levelName(entry.priority))),
            ("identifier", .string(identifier)), ("pid", .number(getpid())),
            ("message", .string(Escape.line(entry.message))),
        ]
        if let id = entry.messageID { members.append(("MESSAGE_ID", .string(id))) }
        members += entry.fields.filter { !$0.1.isEmpty }.map { ($0.0, JSONValue.string($0.1.escaped)) }
        return JSONValue.object(members).rendered() + "\n"
    }

    /// UTC with milliseconds, as log shippers parse it.
    static func rfc3339(_ wallTime: Double) -> String {
        var seconds = time_t(wallTime.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = min(999, Int(((wallTime - wallTime.rounded(.down)) * 1000).rounded()))
        let ms = String(repeating: "0", count: 3 - String(millis).count) + String(millis)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }

    static func levelName(_ priority: JournalPriority) -> String {
        switch priority {
        case .critical: "critical"
        case .error: "error"
        case .warning: "warning"
        case .notice: "notice"
        case .info: "info"
        case .debug: "debug"
        }
    }

    func writeLine(_ entry: JournalEntry) {
        switch target {
        case .json:
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let wall = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
            fputs(Self.jsonLine(entry, identifier: identifier, wallTime: wall), stdout)
            fflush(stdout)
        case .stdout:
            fputs(Self.line(entry, identifier: identifier), stdout)
            fflush(stdout)
        default:
            fputs(Self.line(entry, identifier: identifier), stderr)
            fflush(stderr)
        }
    }
}
