import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
@preconcurrency import Glibc

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Say why a process holds CLOSE_WAIT sockets: the evidence, a diagnosis and what to change.",
        discussion: """
            TARGET is a pid, a systemd unit (or a glob such as 'orders*'), a container \
            (runtime:id, an id prefix, or its name as `docker ps` shows it), or a Kubernetes pod \
            (its name or a glob, namespace/pod, namespace/pod/container). For each matching process holding CLOSE_WAIT \
            sockets it samples the kernel once and looks closer at its top peers: CLOSE_WAIT and \
            ESTABLISHED connections to each (the kernel filters by peer), unread bytes left in \
            receive queues, sockets whose end of stream was read but never closed, the local port \
            range; then classifies the cause (abandoned-connections, idle-pool, unread-responses, \
            or unknown when the evidence fits none) and says what to change.

            With the daemon running (its state file), it adds the tracked history: growth and \
            its pattern (steady, bursts, plateau), ages, the alert level and predicted fd \
            exhaustion. Without it, growth is unknown and only a class that needs no history \
            (unread responses) can be named.

            Exit status: 0 explained; 2 nothing matched TARGET or it holds no CLOSE_WAIT socket; \
            1 the kernel's socket tables cannot be read.
            """
    )

    @Argument(
        help: ArgumentHelp(
            "A pid, a unit (glob), a container (runtime:id, id prefix, name) or a pod (name, namespace/pod).",
            valueName: "target"))
    var target: String

    @Flag(name: .long, help: "Print a JSON document (an array, one entry per process).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("The daemon's state file, for its history.", valueName: "path"))
    var stateFile: String = StateFile.defaultPath

    @Option(name: .long, help: .hidden)
    var procRoot: String = "/proc"

    @OptionGroup var configOption: ConfigOption

    func matches(_ p: ProcessEntry) -> Bool {
        let d = p.details
        if let pid = Int32(target) { return d.pid == pid }
        if let unit = d.unit, Glob.matches(target, unit) { return true }
        if let c = d.container {
            let id = c.id.lossy
            let full = c.runtime.rawValue + ":" + id
            if full.hasPrefix(target) || (target.count >= 4 && id.hasPrefix(target)) { return true }
            // Names: the container's, the pod's (`orders-7d9f-x2k4p`, a glob too), and
            // `namespace/pod` or `namespace/pod/container` as `closewaitd status` shows them.
            if let name = c.name?.lossy, name == target { return true }
            if let pod = c.podName?.lossy {
                let qualified = (c.podNamespace.map { $0.lossy + "/" } ?? "") + pod
                if Glob.matches(target, pod) || target == qualified
                    || c.name.map({ target == qualified + "/" + $0.lossy }) == true
                {
                    return true
                }
            }
        }
        return false
    }

    func run() throws {
        var collector = SnapshotCollector(source: .auto, procRoot: procRoot)
        collector.containerNamer.roots = try configOption.containerRoots()
        collector.sampler.namespaces = NetNamespaces(proc: ProcFS(root: procRoot))
        let snapshot: Snapshot
        do {
            snapshot = try collector.collect(states: [.closeWait]).snapshot
        } catch {
            printError("closewaitd: cannot read the kernel's TCP sockets: \(error)")
            throw ExitCode(1)
        }
        let chosen = snapshot.processes.filter(matches)
        guard !chosen.isEmpty else {
            printError("closewaitd: no process matching \(Escape.line(target)) holds CLOSE_WAIT sockets now")
            throw ExitCode(2)
        }
        let state = (try? readRegularFile(stateFile, limit: StatusCommand.maximumSize)).flatMap {
            try? StateDocument.decode($0)
        }
        let gatherer = EvidenceGatherer(proc: ProcFS(root: procRoot))
        var reports = [ExplainReport]()
        for process in chosen {
            let d = process.details
            let tracked = state?.processes.first {
                $0.pid == d.pid && $0.startTime == Int64(clamping: d.identity.startTime)
            }
            let peers = process.peers.prefix(EvidenceGatherer.maxPeers).map(\.endpoint)
            let sockets: EvidenceGatherer.Sockets?
            do {
                sockets = try gatherer.sockets(pid: d.pid, peers: peers)
            } catch {
                printError("closewaitd: cannot look closer at \(d.label): \(error)")
                sockets = nil
            }
            let evidence = ExplainReport.evidence(
                for: process, tracked: tracked, closeWait: sockets?.closeWait ?? [],
                established: sockets?.established, peers: peers)
            reports.append(
                ExplainReport(
                    process: process, tracked: tracked, evidence: evidence, diagnosis: Diagnosis.classify(evidence)))
        }
        if json {
            printJSON(.array(reports.map { $0.json() }))
        } else {
            print(reports.map { $0.text() }.joined(separator: "\n"), terminator: "")
        }
    }
}
