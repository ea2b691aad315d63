/// SnapshotReport renders a snapshot for a person (a table) or a program (JSON).
public enum SnapshotReport {
    /// The `--json` document. Key names are a stable interface: add, never rename.
    public static func json(_ s: Snapshot, scanner: ScannerStatus? = nil) -> JSONValue {
        .object([
            ("source", .string(s.source.rawValue)),
            ("states", .array(s.states.sorted().map { .string($0.name) })),
            ("total", .number(s.total)),
            ("unowned", .number(s.unowned)),
            ("processes", .array(s.processes.map(processJSON))),
            ("sockets", .array(s.sockets.map(socketJSON))),
            (
                "scan",
                .object([
                    ("processesScanned", .number(s.statistics.processesScanned)),
                    ("fdsRead", .number(s.statistics.fdsRead)),
                    ("vanished", .number(s.statistics.vanished)),
                    ("permissionDenied", .number(s.statistics.permissionDenied)),
                    ("otherErrors", .number(s.statistics.otherErrors)),
                ])
            ),
            ("scanner", scanner.map(scannerJSON) ?? .null),
        ])
    }

    /// `{"active": "poll", "choice": "auto", "reason": "missing CAP_BPF …", "attach": null}`.
    public static func scannerJSON(_ scanner: ScannerStatus) -> JSONValue {
        .object([
            ("active", .string(scanner.active.rawValue)),
            ("choice", .string(scanner.choice.rawValue)),
            ("reason", .optional(scanner.reason)),
            ("attach", .optional(scanner.attach)),
        ])
    }

    static func processJSON(_ p: ProcessEntry) -> JSONValue {
        let d = p.details
        return .object([
            ("pid", .number(d.pid)),
            ("startTime", .number(Int64(clamping: d.identity.startTime))),
            ("comm", .string(d.comm.lossy)),
            ("exe", .optional(d.exe?.lossy)),
            ("cmdline", .array(d.cmdline.map { .string($0.lossy) })),
            ("unit", .optional(d.unit?.lossy)),
            ("container", d.container.map(containerJSON) ?? .null),
            ("innerPid", .optional(d.innerPID)),
            ("netns", .optional(d.netns.map { Int64(clamping: $0) })),
            ("uid", .optional(d.uid)),
            ("closeWait", .number(p.socketCount)),
            ("fdOpen", .number(d.fdOpen)),
            ("fdLimit", .optional(d.fdLimit.map { Int64(clamping: $0) })),
            (
                "peers",
                .array(
                    p.peers.map { peer in
                        .object([
                            ("address", .string(peer.endpoint.address.description)),
                            ("port", .number(peer.endpoint.port)),
                            ("count", .number(peer.count)),
                            ("netns", .optional(peer.netns.map { Int64(clamping: $0) })),
                        ])
                    })
            ),
            ("inodes", .array(p.inodes.map { .number(Int64(clamping: $0)) })),
        ])
    }

    public static func containerJSON(_ c: ContainerIdentity) -> JSONValue {
        .object(
            [
                ("runtime", .string(c.runtime.rawValue)),
                ("id", .string(c.id.lossy)),
                ("name", .optional(c.name?.lossy)),
                ("podUid", .optional(c.podUID?.lossy)),
                ("podName", .optional(c.podName?.lossy)),
                ("podNamespace", .optional(c.podNamespace?.lossy)),
            ] + (c.userManager.map { [("userManager", JSONValue.string($0.lossy))] } ?? [])
                + [
                    ("composeProject", c.composeProject), ("composeService", c.composeService),
                    ("hostname", c.hostname),
                ].compactMap { key, value in value.map { (key, JSONValue.string($0.lossy)) } })
    }

    static func socketJSON(_ s: SnapshotSocket) -> JSONValue {
        let r = s.record
        return .object([
            ("inode", .number(Int64(clamping: r.inode))),
            ("state", .string(r.state.name)),
            ("family", .string(r.family == .inet ? "inet" : "inet6")),
            ("local", .string(r.local.description)),
            ("remote", .string(r.remote.description)),
            ("recvQ", .number(r.recvQ)),
            ("sendQ", .number(r.sendQ)),
            ("uid", .number(r.uid)),
            ("cookie", .optional(r.cookie.map { Int64(bitPattern: $0) })),
            ("owners", .array(s.owners.map { .number($0) })),
            ("unownedReason", .optional(s.unownedReason?.rawValue)),
            ("netns", .optional(s.netns.map { Int64(clamping: $0) })),
        ])
    }

    /// The table for a terminal: one row per process, most sockets first, then the unowned
    /// sockets and a total. `topPeers` limits the peers shown per row.
    public static func table(_ s: Snapshot, topPeers: Int = 3, scanner: ScannerStatus? = nil) -> String {
        let stateTitle = s.states == [.closeWait] ? "CLOSE-WAIT" : "SOCKETS"
        // A CONTAINER column only when some process runs in one.
        let containers = s.processes.contains { $0.details.container != nil || $0.details.netns != nil }
        var rows: [[String]] = [
            ["PID"] + (containers ? ["CONTAINER"] : []) + ["UNIT", "COMM", stateTitle, "FDS/LIMIT", "TOP PEERS"]
        ]
        for p in s.processes {
            let d = p.details
            let limit = d.fdLimit.map(String.init) ?? "unlimited"
            // A peer's namespace only where the row does not show it already.
            var peers = p.peers.prefix(topPeers).map { $0.description(shown: d.netns) }.joined(separator: " ")
            if p.peers.count > topPeers { peers += " (+\(p.peers.count - topPeers) more)" }
            let container =
                d.container.map { $0.cell + (d.innerPID.map { " pid \($0)" } ?? "") }
                ?? d.netns.map { "netns \($0)" } ?? "-"
            rows.append(
                [String(d.pid)] + (containers ? [container] : [])
                    + [d.unit?.escaped ?? "-", d.comm.escaped, String(p.socketCount), "\(d.fdOpen)/\(limit)", peers])
        }
        var out = alignedColumns(rows, rightAligned: containers ? [0, 4] : [0, 3])
        let unowned = s.sockets.filter { $0.owners.isEmpty }
        if !unowned.isEmpty {
            var byReason = [UnownedReason: Int]()
            for socket in unowned { byReason[socket.unownedReason ?? .noOwnerFound, default: 0] += 1 }
            let reasons = byReason.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
            out += "unowned: \(unowned.count) (\(reasons))\n"
        }
        let noun = s.processes.count == 1 ? "process" : "processes"
        let states = s.states.sorted().map(\.name).joined(separator: ",")
        out += "total: \(s.total) \(states) sockets, \(s.processes.count) \(noun), source \(s.source.rawValue)\n"
        if let scanner, let reason = scanner.reason {
            out += "note: eBPF scanner unavailable (\(Escape.line(reason))); polled instead\n"
        }
        if s.statistics.permissionDenied > 0 {
            out +=
                "note: could not read the fd tables of \(s.statistics.permissionDenied) processes (permission denied); "
            out +=
                "their sockets show as unowned. Run as root (or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE) to attribute every socket.\n"
        }
        return out
    }

    /// Left-aligned columns separated by two spaces; the last column is not padded. Cells
    /// are made single-line and control-free (`Escape.line`) whatever the caller passed.
    public static func alignedColumns(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let rows = rows.map { $0.map(Escape.line) }
        guard let columns = rows.first?.count else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if i > 0 { line += "  " }
                if rightAligned.contains(i) { line += pad + cell } else { line += i == columns - 1 ? cell : cell + pad }
            }
            out += line + "\n"
        }
        return out
    }
}
