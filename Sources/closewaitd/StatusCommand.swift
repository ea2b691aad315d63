import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
@preconcurrency import Glibc

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Show what the running daemon tracks: each process's CLOSE_WAIT count, growth, oldest age and alert level.",
        discussion: """
            Reads the state file `closewaitd run` rewrites each tick (default \
            /run/closewaitd/state.json). Exit status: 0 when the daemon's state is fresh, 3 when \
            there is no state file and no daemon runs, 5 when a daemon runs (`closewaitd run`) but \
            has written no state file (it cannot write there: /run full or read-only; its journal \
            says why), 4 when the state is older than \
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

    /// A running `closewaitd run` that writes `stateFile`: the first pid whose executable is
    /// named closewaitd, whose first argument is `run` and whose `--state-file` (the default
    /// when not given) is this one (found through /proc).
    static func runningDaemon(stateFile: String, proc: ProcFS = ProcFS()) -> Int32? {
        let me = getpid()
        for pid in ((try? proc.pids()) ?? []).sorted() where pid != me {
            // The executable's name: `closewaitd`, or `closewaitd (deleted)` after an upgrade.
            guard let name = (try? proc.readLink("\(pid)/exe"))?.split(separator: UInt8(ascii: "/")).last,
                name.elementsEqual("closewaitd".utf8) || name.elementsEqual("closewaitd (deleted)".utf8),
                let cmdline = try? proc.read("\(pid)/cmdline", limit: 4096)
            else { continue }
            let argv = cmdline.split(separator: 0, omittingEmptySubsequences: true).map {
                String(decoding: $0, as: UTF8.self)
            }
            guard argv.count > 1, argv[1] == "run" else { continue }
            var writes = StateFile.defaultPath
            for (i, arg) in argv.enumerated() {
                if arg == "--state-file", i + 1 < argv.count { writes = argv[i + 1] }
                if arg.hasPrefix("--state-file=") { writes = String(arg.dropFirst("--state-file=".count)) }
            }
            if writes == stateFile { return pid }
        }
        return nil
    }

    func run() throws {
        let bytes: [UInt8]
        do {
            bytes = try readRegularFile(stateFile, limit: Self.maximumSize)
        } catch {
            if let errno = error.errno, errno.isVanished {
                if let pid = Self.runningDaemon(stateFile: stateFile) {
                    printError(
                        "closewaitd: the daemon runs (pid \(pid)) but there is no state at \(stateFile): it cannot write it "
                            + "(is /run full or read-only? journalctl -u closewaitd says why), or it was started with another --state-file"
                    )
                    throw ExitCode(5)
                }
                printError(
                    "closewaitd: no state at \(stateFile): the daemon is not running (systemctl status closewaitd)")
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
        let age = wallClockNow() - doc.updatedAt
        if json {
            writeOut(bytes)
        } else {
            print(StateDocument.table(doc, age: age))
        }
        if age > 3 * doc.interval + 5 {
            printError(
                "closewaitd: the state is \(TimeSpan.format(age)) old (daemon pid \(doc.daemonPid)): it is not updating"
            )
            throw ExitCode(4)
        }
    }
}
