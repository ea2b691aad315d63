extension StateDocument {
    /// The table `closewaitd status` prints; every text from the file escaped.
    public static func table(_ doc: StateDocument, age: Double) -> String {
        var out =
            "closewaitd[\(doc.daemonPid)]: \(Escape.line(doc.status)) (updated \(TimeSpan.format(max(0, age))) ago, host \(Escape.line(doc.hostLevel)))\n"
        if let health = doc.attribution, health.degraded {
            out += "warning: \(health.summary); run the daemon with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE\n"
        }
        for warning in doc.warnings { out += "warning: \(Escape.line(warning))\n" }
        if let scanner = doc.scanner { out += "scanner: \(Escape.line(scanner))\n" }
        guard !doc.processes.isEmpty else { return out + "no process holds CLOSE_WAIT sockets" }
        let containers = doc.processes.contains { $0.container != nil || $0.netns != nil }
        var rows = [
            ["PID"] + (containers ? ["CONTAINER"] : []) + [
                "UNIT", "COMM", "CLOSE-WAIT", "GROWTH/MIN", "OLDEST", "FDS/LIMIT", "LEVEL", "TOP PEER",
            ]
        ]
        for p in doc.processes {
            let growth =
                p.growthPerMinute.map { String(growthPerMinute: $0) }
                ?? p.earlyGrowthPerMinute.map { String(growthPerMinute: $0) + " early" } ?? "-"
            var level = p.level
            if !p.reasons.isEmpty { level += " (" + p.reasons.joined(separator: ",") + ")" }
            let escape = { (text: String) in Escape.bytes(Array(text.utf8)) }
            let named = ContainerIdentity.namedCell(
                podNamespace: p.podNamespace.map(escape), podName: p.podName.map(escape),
                name: p.containerName.map(escape))
            let container =
                named.map { $0 + (p.innerPid.map { " pid \($0)" } ?? "") }
                ?? p.container.map { text -> String in
                    var escaped = Escape.bytes(Array(text.utf8))[...]
                    // `user@1000.service: podman:ID` for a user's container: the owner stays in front.
                    var owner = ""
                    if let separator = escaped.firstRange(of: ": ") {
                        owner = String(escaped[..<separator.upperBound])
                        escaped = escaped[separator.upperBound...]
                    }
                    let runtime = String(escaped.prefix { $0 != ":" }),
                        id = String(escaped.drop { $0 != ":" }.dropFirst())
                    return owner + ContainerIdentity.shortLabel(runtime: runtime, id: id)
                        + (p.innerPid.map { " pid \($0)" } ?? "")
                } ?? p.netns.map { "netns \($0)" } ?? "-"
            rows.append(
                [String(p.pid)] + (containers ? [container] : []) + [
                    p.unit.map { Escape.bytes(Array($0.utf8)) } ?? "-",
                    Escape.bytes(Array(p.comm.utf8)) + (p.sharers.map { " (+\($0) sharing)" } ?? ""),
                    String(p.closeWait) + ((p.heldAfterReset ?? 0) > 0 ? " (+\(p.heldAfterReset ?? 0) reset)" : ""),
                    growth, TimeSpan.format(Double(p.oldestAgeSeconds)),
                    "\(p.fdOpen)/\(p.fdLimit.map(String.init) ?? "unlimited")", level, p.topPeer ?? "-",
                ])
        }
        out += SnapshotReport.alignedColumns(rows, rightAligned: containers ? [0, 4, 5, 6] : [0, 3, 4, 5]).dropLast(1)
        // Why, for the processes the daemon diagnosed (alerting ones).
        for p in doc.processes {
            guard let kind = p.diagnosis else { continue }
            out += "\n\(p.pid) \(Escape.bytes(Array(p.comm.utf8))): \(Escape.line(kind))"
            if let text = p.diagnosisText { out += " — " + Escape.line(text) }
            if let confidence = p.diagnosisConfidence { out += "\n    confidence: " + Escape.line(confidence) }
            if let evidence = p.evidence { out += "\n    evidence: " + Escape.line(evidence) }
            if let advice = p.advice { out += "\n    to fix: " + Escape.line(advice) }
            if let hint = p.libraryHint { out += "\n    " + Escape.line(hint) }
        }
        return out
    }
}
