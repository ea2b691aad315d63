import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
import FoundationEssentials
@preconcurrency import Glibc

/// StateDocument is the part of the daemon's state file `status` prints (StateFile.render).
struct StateDocument: Decodable {
    struct Process: Decodable {
        var pid: Int32
        var comm: String
        var unit: String?
        var closeWait: Int
        var growthPerMinute: Double?
        var oldestAgeSeconds: Int
        var fdOpen: Int
        var fdLimit: Int?
        var topPeer: String?
        var level: String
        var reasons: [String]
    }
    var daemonPid: Int32
    var updatedAt: Double
    var interval: Double
    var status: String
    var hostLevel: String
    var processes: [Process]
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the running daemon tracks: each process's CLOSE_WAIT count, growth, oldest age and alert level.",
        discussion: """
        Reads the state file `closewaitd run` rewrites each tick (default \
        /run/closewaitd/state.json). Exit status: 0 when the daemon's state is fresh, 3 when \
        there is no state file (the daemon is not running), 4 when the state is older than \
        three ticks (the daemon is stuck or gone), 77 when the state file may not be read \
        (run as root), 1 when it is not a closewaitd state document.
        """
    )

    @Option(name: .long, help: ArgumentHelp("The daemon's state file.", valueName: "path"))
    var stateFile: String = StateFile.defaultPath

    @Flag(name: .long, help: "Print the state document as JSON.")
    var json = false

    /// The state of a host with thousands of leaking processes is a few MiB.
    static let maximumSize = 64 << 20

    func run() throws {
        let bytes: [UInt8]
        do {
            bytes = try readRegularFile(stateFile, limit: Self.maximumSize)
        } catch {
            if let errno = error.errno, errno.isVanished {
                printError("closewaitd: no state at \(stateFile): the daemon is not running (systemctl status closewaitd)")
                throw ExitCode(3)
            }
            if let errno = error.errno, errno.isPermission {
                printError("closewaitd: permission denied reading \(stateFile): run as root (sudo closewaitd status)")
                throw ExitCode(77)
            }
            printError("closewaitd: cannot read the state: \(error)")
            throw ExitCode(1)
        }
        guard let doc = try? JSONDecoder().decode(StateDocument.self, from: Data(bytes)) else {
            printError("closewaitd: \(stateFile) is not a closewaitd state document")
            throw ExitCode(1)
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let age = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - doc.updatedAt
        if json {
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stdout) }
        } else {
            print(Self.table(doc, age: age))
        }
        if age > 3 * doc.interval + 5 {
            printError("closewaitd: the state is \(TimeSpan.format(age)) old (daemon pid \(doc.daemonPid)): it is not updating")
            throw ExitCode(4)
        }
    }

    static func table(_ doc: StateDocument, age: Double) -> String {
        let out = "closewaitd[\(doc.daemonPid)]: \(Escape.line(doc.status)) (updated \(TimeSpan.format(max(0, age))) ago, host \(doc.hostLevel))\n"
        guard !doc.processes.isEmpty else { return out + "no process holds CLOSE_WAIT sockets" }
        var rows = [["PID", "UNIT", "COMM", "CLOSE-WAIT", "GROWTH/MIN", "OLDEST", "FDS/LIMIT", "LEVEL", "TOP PEER"]]
        for p in doc.processes {
            let growth = p.growthPerMinute.map { ($0 >= 0 ? "+" : "") + AlertMessage.fixed($0, 1) } ?? "-"
            var level = p.level
            if !p.reasons.isEmpty { level += " (" + p.reasons.joined(separator: ",") + ")" }
            rows.append([String(p.pid), p.unit.map { Escape.bytes(Array($0.utf8)) } ?? "-", Escape.bytes(Array(p.comm.utf8)),
                         String(p.closeWait), growth, TimeSpan.format(Double(p.oldestAgeSeconds)),
                         "\(p.fdOpen)/\(p.fdLimit.map(String.init) ?? "unlimited")", level, p.topPeer ?? "-"])
        }
        return out + SnapshotReport.alignedColumns(rows, rightAligned: [0, 3, 4, 5]).dropLast(1)
    }
}
