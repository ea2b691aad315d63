import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
@preconcurrency import Glibc

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
        let doc: StateDocument
        do {
            doc = try StateDocument.decode(bytes)
        } catch {
            printError("closewaitd: \(stateFile) is not a closewaitd state document: \(Escape.line(error.description))")
            throw ExitCode(1)
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let age = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - doc.updatedAt
        if json {
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stdout) }
        } else {
            print(StateDocument.table(doc, age: age))
        }
        if age > 3 * doc.interval + 5 {
            printError("closewaitd: the state is \(TimeSpan.format(age)) old (daemon pid \(doc.daemonPid)): it is not updating")
            throw ExitCode(4)
        }
    }
}
