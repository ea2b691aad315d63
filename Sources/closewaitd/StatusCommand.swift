import ArgumentParser
import CloseWaitCore
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the running daemon tracks: each process's CLOSE_WAIT count, growth, oldest age and alert level.",
        discussion: """
        Reads the state file `closewaitd run` rewrites each tick (default \
        /run/closewaitd/state.json). Exit status: 0 when the daemon's state is fresh, 3 when \
        there is no state file (the daemon is not running), 4 when the state is older than \
        three ticks (the daemon is stuck or gone).
        """
    )

    @Option(name: .long, help: ArgumentHelp("The daemon's state file.", valueName: "path"))
    var stateFile: String = StateFile.defaultPath

    @Flag(name: .long, help: "Print the state document as JSON.")
    var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: stateFile) else {
            printError("closewaitd: no state at \(stateFile): the daemon is not running (systemctl status closewaitd)")
            throw ExitCode(3)
        }
        guard let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            printError("closewaitd: \(stateFile) is not a closewaitd state document")
            throw ExitCode(1)
        }
        let updated = doc["updatedAt"] as? Double ?? 0
        let interval = doc["interval"] as? Double ?? 5
        let age = Date().timeIntervalSince1970 - updated
        let stale = age > 3 * interval + 5
        if json {
            FileHandle.standardOutput.write(data)
        } else {
            print(Self.table(doc, age: age))
        }
        if stale {
            printError("closewaitd: the state is \(TimeSpan.format(age)) old (daemon pid \(doc["daemonPid"] ?? "?")): it is not updating")
            throw ExitCode(4)
        }
    }

    static func table(_ doc: [String: Any], age: Double) -> String {
        var out = "closewaitd[\(doc["daemonPid"] ?? "?")]: \(doc["status"] as? String ?? "") (updated \(TimeSpan.format(max(0, age))) ago"
        out += ", host \(doc["hostLevel"] as? String ?? "ok"))\n"
        let processes = doc["processes"] as? [[String: Any]] ?? []
        guard !processes.isEmpty else { return out + "no process holds CLOSE_WAIT sockets" }
        var rows = [["PID", "UNIT", "COMM", "CLOSE-WAIT", "GROWTH/MIN", "OLDEST", "FDS/LIMIT", "LEVEL", "TOP PEER"]]
        for p in processes {
            let growth = (p["growthPerMinute"] as? Double).map { String(format: "%+.1f", $0) } ?? "-"
            let oldest = TimeSpan.format(Double(p["oldestAgeSeconds"] as? Int ?? 0))
            let limit = (p["fdLimit"] as? Int).map(String.init) ?? "unlimited"
            var level = p["level"] as? String ?? "ok"
            if let reasons = p["reasons"] as? [String], !reasons.isEmpty { level += " (" + reasons.joined(separator: ",") + ")" }
            rows.append(["\(p["pid"] ?? "")", p["unit"] as? String ?? "-", p["comm"] as? String ?? "",
                         "\(p["closeWait"] ?? "")", growth, oldest, "\(p["fdOpen"] ?? "")/\(limit)", level,
                         p["topPeer"] as? String ?? "-"])
        }
        return out + SnapshotReport.alignedColumns(rows, rightAligned: [0, 3, 4, 5]).dropLast(1)
    }
}
