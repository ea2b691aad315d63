/// AlertMessage renders an alert event as a journal entry a person can act on at 3 a.m.
public enum AlertMessage {
    public static func entry(_ e: AlertEvent) -> JournalEntry {
        let priority: JournalPriority = e.kind == .recovered ? .notice : (e.level == .critical ? .critical : .warning)
        var fields: [(String, ByteString)] = [
            ("CLOSEWAIT_REASON", ByteString(e.reason.rawValue)),
            ("CLOSEWAIT_LEVEL", ByteString(e.kind == .recovered ? "recovered" : e.level.name)),
            ("CLOSEWAIT_KIND", ByteString(e.kind.rawValue)),
            ("CLOSEWAIT_RULE", ByteString(e.rule)),
            ("CLOSEWAIT_THRESHOLD", ByteString(number(e.threshold, reason: e.reason))),
            ("CLOSEWAIT_TOTAL", ByteString(String(e.total))),
        ]
        guard let p = e.process else {
            if e.reason == .unowned { return unownedEntry(e, priority: priority, fields: fields) }
            let message: String
            switch e.kind {
            case .recovered:
                message =
                    "Host-wide CLOSE_WAIT sockets back to \(e.total) (below \(Int(saturating: e.threshold))); recovered from \(e.level.name)."
            default:
                let prefix = e.kind == .escalated ? "escalated to critical: " : (e.kind == .reminder ? "still: " : "")
                message =
                    "\(prefix)the host holds \(e.total) CLOSE_WAIT sockets (\(e.level.name) at \(Int(saturating: e.threshold))): "
                    + "peers closed these connections and their processes never closed their side. "
                    + "Run `closewaitd snapshot` to see which processes hold them."
            }
            fields.append(("CLOSEWAIT_COUNT", ByteString(String(e.total))))
            return JournalEntry(message: message, priority: priority, messageID: MessageID.of(e.kind), fields: fields)
        }
        let d = p.details
        let unit = d.whereItRuns + (d.unit.map { " (\($0.escaped))" } ?? "")
        let text: [(String, String)] = [
            ("CLOSEWAIT_PID", String(d.pid)),
            ("CLOSEWAIT_START_TIME", String(d.identity.startTime)),
        ]
        fields += text.map { ($0.0, ByteString($0.1)) }
        fields += [
            ("CLOSEWAIT_COMM", d.comm),
            ("CLOSEWAIT_EXE", d.exe ?? ""),
            ("CLOSEWAIT_UNIT", d.unit ?? ""),
        ]
        if let c = d.container {
            fields.append(("CLOSEWAIT_CONTAINER_RUNTIME", ByteString(c.runtime.rawValue)))
            fields.append(("CLOSEWAIT_CONTAINER_ID", c.id))
            let named: [(String, ByteString?)] = [
                ("CLOSEWAIT_CONTAINER_NAME", c.name), ("CLOSEWAIT_POD_NAME", c.podName),
                ("CLOSEWAIT_POD_NAMESPACE", c.podNamespace), ("CLOSEWAIT_POD_UID", c.podUID),
                ("CLOSEWAIT_COMPOSE_PROJECT", c.composeProject), ("CLOSEWAIT_COMPOSE_SERVICE", c.composeService),
                ("CLOSEWAIT_CONTAINER_HOSTNAME", c.hostname),
            ]
            fields += named.compactMap { key, value in value.map { (key, $0) } }
            if let manager = c.userManager { fields.append(("CLOSEWAIT_CONTAINER_USER_MANAGER", manager)) }
        }
        if let inner = d.innerPID { fields.append(("CLOSEWAIT_NSPID", ByteString(String(inner)))) }
        if let netns = d.netns { fields.append(("CLOSEWAIT_NETNS", ByteString(String(netns)))) }
        let figures: [(String, String)] = [
            ("CLOSEWAIT_COUNT", String(e.gone ? 0 : p.count)),
            ("CLOSEWAIT_HELD_AFTER_RESET", String(e.gone ? 0 : p.heldAfterReset)),
            ("CLOSEWAIT_GROWTH_PER_MIN", p.alertableGrowth.map { fixed($0, 1) } ?? ""),
            ("CLOSEWAIT_OLDEST_AGE_SEC", String(Int(saturating: p.oldestAge))),
            ("CLOSEWAIT_TOP_PEER", p.topPeer?.endpoint.description ?? ""),
            ("CLOSEWAIT_FD_OPEN", String(d.fdOpen)),
            ("CLOSEWAIT_FD_LIMIT", d.fdLimit.map(String.init) ?? "unlimited"),
        ]
        fields += figures.map { ($0.0, ByteString($0.1)) }
        if let netns = p.topPeer?.netns { fields.append(("CLOSEWAIT_TOP_PEER_NETNS", ByteString(String(netns)))) }
        if let exhaustion = p.predictedExhaustion {
            fields.append(("CLOSEWAIT_EXHAUSTION_SEC", ByteString(String(Int(saturating: exhaustion)))))
        }
        let message: String
        if e.kind == .recovered {
            if let rule = e.ignoredByRule {
                message =
                    "\(d.label)\(unit) is now ignored by rule \(rule); it still holds \(p.count) CLOSE_WAIT sockets; "
                    + "its \(e.reason.rawValue) \(e.level.name) alert is withdrawn, not resolved."
            } else if e.gone {
                message =
                    "\(d.label)\(unit) no longer holds CLOSE_WAIT sockets (it closed them or exited); \(e.reason.rawValue) \(e.level.name) recovered."
            } else {
                let bound = e.reason == .fdExhaustion ? "beyond" : "below"
                message =
                    "\(d.label)\(unit) \(e.reason.rawValue) back to \(describe(e.reason, e.value)) (\(bound) \(describe(e.reason, e.threshold))); "
                    + "holds \(p.count) CLOSE_WAIT sockets; \(e.reason.rawValue) \(e.level.name) recovered."
            }
        } else {
            let prefix =
                switch e.kind {
                case .escalated: "escalated to critical: "
                case .reminder: "still: "
                default: ""
                }
            let reset =
                p.heldAfterReset > 0 ? " and \(p.heldAfterReset) more the kernel reset but it still holds open" : ""
            var parts = ["\(prefix)\(d.label)\(unit) holds \(p.count) CLOSE_WAIT sockets\(reset) (\(trend(p)))"]
            if let peer = p.topPeer { parts.append("\(peer.count) to \(peer.place(shown: d.netns))") }
            var fds = "fds \(d.fdOpen)/\(d.fdLimit.map(String.init) ?? "unlimited")"
            if let exhaustion = p.predictedExhaustion { fds += ", exhausted in ~\(TimeSpan.format(exhaustion))" }
            parts.append(fds)
            var text =
                parts.joined(separator: "; ")
                + " — \(e.level.name): \(e.reason.rawValue) \(describe(e.reason, e.value)) past \(describe(e.reason, e.threshold))"
                + " (rule \(e.rule)). The peers closed these connections and \(d.comm.escaped) never closed its side."
            if let (diagnosis, evidence) = e.diagnosis {
                fields.append(("CLOSEWAIT_DIAGNOSIS", ByteString(diagnosis.kind.rawValue)))
                fields.append(("CLOSEWAIT_EVIDENCE", ByteString(evidence.summary)))
                if diagnosis.kind != .unknown {
                    fields.append(("CLOSEWAIT_CONFIDENCE", ByteString(diagnosis.confidence.rawValue)))
                }
                // A known class leads: the first sentence says what kind of bug, with its evidence.
                if diagnosis.kind != .unknown {
                    text = "\(d.label)\(unit): \(diagnosis.sentenceWithConfidence) " + text
                } else {
                    text += " " + diagnosis.sentence
                }
                text += " To fix: " + diagnosis.advice
                if let hint = diagnosis.hint {
                    text += " " + hint.sentence
                    fields.append(("CLOSEWAIT_LIBRARY", ByteString(hint.library)))
                }
            } else {
                // Not looked at (the process exited or could not be read, or the tick's budget of
                // looks was spent): the catalog's Diagnosis line still reads as a sentence.
                fields.append(("CLOSEWAIT_DIAGNOSIS", ByteString(Diagnosis.Kind.unknown.rawValue)))
                fields.append(
                    (
                        "CLOSEWAIT_EVIDENCE",
                        ByteString("not looked at this time; closewaitd explain \(d.identity.pid) looks now")
                    ))
            }
            message = text
        }
        return JournalEntry(message: message, priority: priority, messageID: MessageID.of(e.kind), fields: fields)
    }

    /// The host-wide alert for sockets no process holds: no per-process alert can fire for them.
    static func unownedEntry(_ e: AlertEvent, priority: JournalPriority, fields: [(String, ByteString)]) -> JournalEntry
    {
        let count = Int(saturating: e.value ?? 0)
        let message: String
        if e.kind == .recovered {
            message =
                "CLOSE_WAIT sockets without a known owner back below \(Int(saturating: e.threshold)); recovered from \(e.level.name)."
        } else {
            let prefix = e.kind == .escalated ? "escalated to critical: " : (e.kind == .reminder ? "still: " : "")
            message =
                "\(prefix)\(count) CLOSE_WAIT sockets are held by no process's fd table (\(e.level.name) at \(Int(saturating: e.threshold))): "
                + "passed over a unix socket and not received yet (SCM_RIGHTS in flight), or held where /proc cannot show them. "
                + "No per-process alert can fire for them. `closewaitd snapshot` lists them as unowned; `ss -xp` shows unix sockets with queued data."
        }
        return JournalEntry(
            message: message, priority: priority,
            messageID: e.kind == .recovered ? MessageID.recovered : MessageID.unownedSockets,
            fields: fields + [("CLOSEWAIT_COUNT", ByteString(String(count)))])
    }

    static func trend(_ p: ProcessStatus) -> String {
        func rate(_ v: Double) -> String { (v >= 0 ? "+" : "") + fixed(v, v.magnitude < 10 ? 1 : 0) + "/min" }
        let growth =
            p.growthPerMinute.map(rate)
            ?? p.earlyGrowth.map { "\(rate($0.perMinute)) over \(TimeSpan.format($0.seconds)), early" }
            ?? "growth not known yet"
        return "\(growth), oldest \(TimeSpan.format(p.oldestAge))"
    }

    static func describe(_ reason: AlertReason, _ value: Double?) -> String {
        guard let value else { return "-" }
        switch reason {
        case .count, .total, .unowned: return String(Int(saturating: value))
        case .growth: return fixed(value, 1) + "/min"
        case .age: return TimeSpan.format(value)
        case .fdExhaustion: return "in " + TimeSpan.format(value)
        }
    }

    static func number(_ value: Double, reason: AlertReason) -> String {
        switch reason {
        case .growth: fixed(value, 1)
        default: String(Int(saturating: value))
        }
    }

    /// A decimal with `digits` fraction digits, without Foundation. Values too large for exact
    /// digits (beyond 1e15) are printed in Swift's shortest form; NaN and infinities by name.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        guard value.magnitude < 1e15 else { return String(value) }
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * Double(scale)).rounded()
        if digits == 0 { return String(Int(scaled)) }
        let sign = scaled < 0 ? "-" : ""
        let magnitude = Int(scaled.magnitude)
        let fraction = String(magnitude % scale)
        return sign + String(magnitude / scale) + "." + String(repeating: "0", count: digits - fraction.count)
            + fraction
    }
}
