/// ExplainReport is `closewaitd explain`: one screen for a person (or one JSON document) about
/// one process — who it is, its fd headroom, its CLOSE_WAIT sockets per peer with the
/// evidence, the age histogram, the diagnosis and what to change, and the `ss` command that
/// shows the raw sockets. Pure: everything comes in as values.
public struct ExplainReport: Sendable {
    public var process: ProcessEntry
    /// The daemon's view of the process, when it runs and tracks it.
    public var tracked: StateDocument.Process?
    public var evidence: Evidence
    public var diagnosis: Diagnosis

    public init(process: ProcessEntry, tracked: StateDocument.Process?, evidence: Evidence, diagnosis: Diagnosis) {
        self.process = process
        self.tracked = tracked
        self.evidence = evidence
        self.diagnosis = diagnosis
    }

    /// The evidence for a process from one sample (and the daemon's history, if any).
    public static func evidence(
        for process: ProcessEntry, tracked: StateDocument.Process?, closeWait: [SocketRecord],
        established: [SocketRecord]?, peers: [Endpoint]
    ) -> Evidence {
        // Per-socket ages live in the daemon's tracker: its histogram and evidence line carry them.
        Evidence(
            closeWait: process.socketCount,
            peers: peers.map { PeerEvidence(peer: $0, closeWait: closeWait, established: established) },
            ages: nil, growthPerMinute: tracked?.growthPerMinute,
            pattern: tracked?.pattern.flatMap(GrowthPattern.init(rawValue:)) ?? .unknown,
            ageHistogram: tracked?.ageHistogram)
    }

    /// `ss` commands that list the raw sockets, one per top peer; run in the process's network
    /// namespace when it is not the host's (a peer address means something only there).
    public var ssCommands: [String] {
        let enter = process.details.netns == nil ? "" : "nsenter -t \(process.details.pid) -n "
        return evidence.peers.prefix(3).map { p in
            "\(enter)ss -tnpie state close-wait dst '\(p.peer.description)'"
        }
    }

    public func text() -> String {
        let d = process.details
        var out = "\(d.label)"
        if let unit = d.unit { out += " in \(unit.escaped)" }
        out += d.whereItRuns + "\n"
        if let exe = d.exe { out += "  exe       \(exe.escaped)\n" }
        var fds = "  fds       \(d.fdOpen) open of \(d.fdLimit.map(String.init) ?? "unlimited")"
        if let seconds = tracked?.exhaustionSeconds {
            fds += "; at this growth the limit is reached in ~\(TimeSpan.format(Double(seconds)))"
        }
        out += fds + "\n"
        out += "  CLOSE_WAIT \(process.socketCount)"
        if let held = tracked?.heldAfterReset, held > 0 { out += " (and \(held) reset by the kernel, still held open)" }
        if let t = tracked {
            let growth =
                t.growthPerMinute.map { String(growthPerMinute: $0) + "/min" }
                ?? t.earlyGrowthPerMinute.map { String(growthPerMinute: $0) + "/min so far (early)" }
                ?? "growth not known yet"
            out +=
                "; \(growth), \(evidence.pattern.rawValue); oldest \(TimeSpan.format(Double(t.oldestAgeSeconds))); alert: \(Escape.line(t.level))"
            if !t.reasons.isEmpty { out += " (" + t.reasons.map { Escape.line($0) }.joined(separator: ",") + ")" }
            out += "\n"
        } else {
            out += "; no history: the daemon is not running or does not track it (growth, pattern and ages unknown)\n"
        }
        var rows = [
            ["PEER", "CLOSE-WAIT", "ESTABLISHED", "UNREAD", "UNREAD BYTES", "END READ", "UNSENT", "LOCAL PORTS"]
        ]
        for p in evidence.peers {
            rows.append([
                p.peer.description, String(p.closeWait), p.established.map(String.init) ?? "?", String(p.unread),
                String(p.unreadBytes), String(p.endRead), String(p.unsent),
                p.localPorts.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "-",
            ])
        }
        out += "\n" + SnapshotReport.alignedColumns(rows, rightAligned: [1, 2, 3, 4, 5, 6])
        if let histogram = evidence.ageHistogram {
            out +=
                "\n  ages      "
                + zip(Evidence.ageBuckets, histogram).map { "\($0.0.label) \($0.1)" }.joined(separator: ", ") + "\n"
        }
        if let line = tracked?.evidence { out += "  daemon    \(Escape.line(line))\n" }
        out += "\nDiagnosis: \(diagnosis.kind.rawValue)\n  \(diagnosis.sentence)\n"
        if diagnosis.kind != .unknown { out += "  Confidence: \(diagnosis.confidence.rawValue) (\(diagnosis.basis))\n" }
        out += "  To fix: \(diagnosis.advice)\n"
        if let hint = diagnosis.hint { out += "  \(hint.sentence)\n" }
        if tracked?.diagnosis != nil, tracked?.diagnosis != diagnosis.kind.rawValue {
            out += "  (the daemon's last diagnosis: \(Escape.line(tracked?.diagnosis ?? "")))\n"
        }
        out += "\nRaw sockets:\n" + ssCommands.map { "  \($0)\n" }.joined()
        return out
    }

    public func json() -> JSONValue {
        .object([
            ("process", SnapshotReport.processJSON(process)),
            ("tracked", .bool(tracked != nil)),
            ("growthPerMinute", tracked?.growthPerMinute.map(JSONValue.double) ?? .null),
            ("pattern", .string(evidence.pattern.rawValue)),
            ("oldestAgeSeconds", .optional(tracked?.oldestAgeSeconds)),
            ("heldAfterReset", .optional(tracked?.heldAfterReset)),
            ("exhaustionSeconds", .optional(tracked?.exhaustionSeconds)),
            ("level", .optional(tracked?.level)),
            (
                "peers",
                .array(
                    evidence.peers.map { p in
                        .object([
                            ("peer", .string(p.peer.description)),
                            ("closeWait", .number(p.closeWait)),
                            ("established", .optional(p.established)),
                            ("unread", .number(p.unread)),
                            ("unreadBytes", .number(p.unreadBytes)),
                            ("endRead", .number(p.endRead)),
                            ("unsent", .number(p.unsent)),
                            ("localPortLow", .optional(p.localPorts?.lowerBound)),
                            ("localPortHigh", .optional(p.localPorts?.upperBound)),
                        ])
                    })
            ),
            (
                "ageHistogram",
                evidence.ageHistogram.map { h in
                    .object(zip(Evidence.ageBuckets, h).map { ($0.0.label, JSONValue.number($0.1)) })
                } ?? .null
            ),
            (
                "diagnosis",
                .object([
                    ("kind", .string(diagnosis.kind.rawValue)),
                    ("sentence", .string(diagnosis.sentence)),
                    ("confidence", .string(diagnosis.confidence.rawValue)),
                    ("basis", .string(diagnosis.basis)),
                    ("library", .optional(diagnosis.hint?.library)),
                    ("libraryFix", .optional(diagnosis.hint?.fix)),
                    ("librarySeen", .optional(diagnosis.hint?.seen)),
                    ("advice", .string(diagnosis.advice)),
                ])
            ),
            ("daemonDiagnosis", .optional(tracked?.diagnosis)),
            ("evidence", .string(evidence.summary)),
            ("ss", .array(ssCommands.map(JSONValue.string))),
        ])
    }
}
