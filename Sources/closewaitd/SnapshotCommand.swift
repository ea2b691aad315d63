import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
@preconcurrency import Glibc

extension SourceChoice: ExpressibleByArgument {}
extension NamespaceChoice: ExpressibleByArgument {}
extension ScannerChoice: ExpressibleByArgument {}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take one sample and print, per process, who holds CLOSE_WAIT sockets and to whom.",
        discussion: """
            Reads the kernel's TCP sockets (netlink sock_diag, or /proc/net/tcp{,6}), then every \
            process's /proc/<pid>/fd to find their owners. Run as root (or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE) to \
            see other users' processes; without it, only your own processes are attributed and the \
            rest show as unowned.

            With --scanner ebpf (or auto, where it loads) one eBPF iterator pass over every \
            process's open files finds the sockets of every network namespace and all their holders \
            at once; it needs Linux 5.11+ with BTF and CAP_BPF + CAP_PERFMON.

            Exit status: 0 on success, 1 when the kernel's socket tables could not be read, 69 \
            when --scanner ebpf was asked for and cannot load (the reason is printed).
            """
    )

    @Option(
        name: .long, parsing: .upToNextOption,
        help: ArgumentHelp("TCP states to report (ss names, comma list allowed).", valueName: "state"))
    var state: [String] = ["close-wait"]

    @Option(
        name: .long,
        help: "Where to read sockets: netlink, proc (/proc/net/tcp{,6}) or auto (netlink, falling back to proc).")
    var source: SourceChoice = .auto

    @Option(
        name: .long,
        help:
            "How to find sockets and owners: ebpf (one kernel iterator pass), poll (socket tables and /proc/*/fd) or auto (ebpf where it loads)."
    )
    var scanner: ScannerChoice = .auto

    @Option(
        name: .long,
        help: "Network namespaces to sample: all (every namespace on the host: containers, ip netns) or own.")
    var namespaces: NamespaceChoice = .all

    @Option(name: .long, help: ArgumentHelp("Only these processes (repeatable).", valueName: "pid"))
    var pid: [Int32] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only processes in systemd units matching this glob, e.g. 'orders.service' or 'nginx*' (repeatable).",
            valueName: "glob"))
    var unit: [String] = []

    @Flag(name: .long, help: "Print a JSON document instead of a table.")
    var json = false

    @Option(name: .long, help: "Peers shown per process in the table.")
    var top: Int = 3

    @Option(name: .long, help: .hidden)
    var procRoot: String = "/proc"

    @OptionGroup var configOption: ConfigOption

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the raw netlink answers to DIR/netlink-inet.bin and DIR/netlink-inet6.bin (test fixtures).",
            visibility: .hidden))
    var dumpNetlink: String?

    func parsedStates() throws -> Set<TCPState> {
        var states = Set<TCPState>()
        for item in state.flatMap({ $0.split(separator: ",") }) {
            guard let parsed = TCPState(name: String(item)) else {
                let names = TCPState.allCases.map(\.name).joined(separator: ", ")
                throw ValidationError("unknown state '\(item)'; known states: \(names)")
            }
            states.insert(parsed)
        }
        return states
    }

    func validate() throws {
        _ = try parsedStates()
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let states = try parsedStates()
        if let dumpNetlink { try captureNetlink(states: states, directory: dumpNetlink); return }
        var collector = SnapshotCollector(source: source, procRoot: procRoot)
        collector.containerNamer.roots = try configOption.containerRoots()
        if namespaces == .all { collector.sampler.namespaces = NetNamespaces(proc: ProcFS(root: procRoot)) }
        collector.onlyOwnNamespace = namespaces == .own
        // One look, asked for by an operator: a longer budget than a tick's, the same byte limit.
        collector.sampler.foreignBudget = 30
        do {
            try collector.selectScanner(scanner, states: states)
        } catch {
            printError("closewaitd: the eBPF scanner cannot run: \(error)")
            throw ExitCode(69)
        }
        let result: SnapshotCollector.Result
        do {
            result = try collector.collect(states: states)
        } catch {
            printError("closewaitd: cannot read the kernel's TCP sockets: \(error)")
            throw ExitCode(1)
        }
        if let reason = result.fallbackReason {
            printError("closewaitd: netlink sock_diag unavailable (\(reason)); read /proc/net/tcp instead")
        }
        if let problem = result.scannerProblem { printError("closewaitd: \(problem)") }
        if let note = result.containerNames.note { printError("closewaitd: \(note)") }
        let coverage = result.coverage
        if !coverage.memberless.isEmpty {
            printError(
                "closewaitd: \(coverage.memberless.count) named network namespace(s) with no process in them not sampled (reading one needs setns, CAP_SYS_ADMIN): "
                    + coverage.memberless.map { Escape.line($0) }.joined(separator: ", "))
        }
        for (ns, why) in coverage.cut.sorted(by: { $0.key < $1.key }) {
            printError("closewaitd: network namespace net:[\(ns)] cut short: \(why)")
        }
        for (ns, why) in coverage.failed.sorted(by: { $0.key < $1.key }) {
            printError("closewaitd: network namespace net:[\(ns)] unreadable: \(why)")
        }
        if coverage.unread > 0 { printError("closewaitd: \(coverage.unread) network namespace(s) not read within 30s") }
        let snapshot = result.snapshot.filtered(pids: Set(pid), units: unit)
        if json {
            printJSON(SnapshotReport.json(snapshot, scanner: result.scanner))
        } else {
            print(SnapshotReport.table(snapshot, topPeers: top, scanner: result.scanner), terminator: "")
        }
    }

    func captureNetlink(states: Set<TCPState>, directory: String) throws {
        for family in [AddressFamily.inet, .inet6] {
            var netlink = NetlinkSockDiag()
            netlink.record = true
            _ = try netlink.dump(family: family, states: states)
            let path = directory + (family == .inet ? "/netlink-inet.bin" : "/netlink-inet6.bin")
            let bytes = netlink.recorded.flatMap { $0 }
            guard let file = fopen(path, "wb") else { throw ValidationError("cannot write \(path)") }
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
    }
}

func printError(_ message: String) {
    fputs(message + "\n", stderr)
}

/// A JSON document on stdout, pretty-printed, with a final newline.
func printJSON(_ value: JSONValue) {
    writeOut(value.renderedBytes(pretty: true) + [0x0a])
}

/// Bytes on stdout as they are (a state file is shown exactly as the daemon wrote it).
func writeOut(_ bytes: [UInt8]) {
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stdout) }
}
