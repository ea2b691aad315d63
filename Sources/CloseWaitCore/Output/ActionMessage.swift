/// ActionMessage renders what an action did as journal entries — before (started, dry run or
/// held back) and after (how it ended) — each with the alert's own fields, and the alert as
/// the environment of an `exec` command.
public enum ActionMessage {
    /// How an action ended.
    public enum Outcome: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
        /// Killed at its timeout (SIGTERM, then SIGKILL).
        case timedOut(Double)
        /// It could not be started (the errno's text).
        case failedToStart(String)
        /// destroy_sockets: how many were destroyed, how many refused and why, how many had
        /// left CLOSE_WAIT meanwhile.
        case destroyed(count: Int, refused: [String: Int], gone: Int)
        /// restart_unit: systemd restarted `unit` (why it was aimed at the leaker); its main pid
        /// before and after, its state when the job ended (or when closewaitd stopped waiting).
        case restarted(
            unit: String, why: String, mainPIDBefore: UInt32, mainPIDAfter: UInt32, state: String, finished: Bool)
        /// restart_unit with dry_run: what it would restart, and why that is the leaker's unit.
        case wouldRestart(unit: String, why: String)
        /// restart_unit refused by its checks (RestartCheck), or the process is gone.
        case refused(String)
        /// A D-Bus call failed (its error name and message; polkit said no, systemd refused).
        case busError(String)

        public var succeeded: Bool {
            switch self {
            case let .destroyed(_, refused, _): refused.isEmpty
            case let .restarted(_, _, _, _, state, finished): finished && state.hasPrefix("active")
            case .wouldRestart: true
            default: self == .exited(0)
            }
        }

        public var phrase: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "was killed by signal \(signal)"
            case .timedOut(let seconds): "timed out after \(TimeSpan.format(seconds)) and was killed"
            case .failedToStart(let why): "could not be started: \(why)"
            case let .destroyed(count, refused, gone):
                "destroyed \(count) CLOSE_WAIT \(count == 1 ? "socket" : "sockets")"
                    + (refused.isEmpty
                        ? ""
                        : "; \(refused.values.reduce(0, +)) refused ("
                            + refused.sorted { $0.key < $1.key }.map { "\($0.value): \($0.key)" }.joined(
                                separator: ", ")
                            + ")")
                    + (gone > 0 ? "; \(gone) had left CLOSE_WAIT meanwhile" : "")
                    + "; their fds stay open until the process closes them (or exits)"
            case let .restarted(unit, why, before, after, state, finished):
                "restarted \(Escape.line(unit)) (\(why)): main pid \(before) → \(after == 0 ? "none" : String(after)), "
                    + (finished ? "now \(state)" : "the restart job was still running, unit \(state)")
            case let .wouldRestart(unit, why): "would restart \(Escape.line(unit)) (\(why)); dry run, nothing done"
            case .refused(let why): "did not restart: \(why)"
            case .busError(let why): "failed: \(why)"
            }
        }
    }

    /// What the action does, for a person: `exec /usr/local/bin/page-oncall --severity critical`.
    public static func what(_ spec: ActionSpec) -> String {
        switch spec.kind {
        case .exec(let argv): "exec " + argv.map { Escape.line($0) }.joined(separator: " ")
        case .destroySockets: "destroy its CLOSE_WAIT sockets to its top peers"
        case .restartUnit(let unit): "restart its unit \(Escape.line(unit))"
        }
    }

    /// The alert's journal fields (every CLOSEWAIT_*), and the action's own.
    static func fields(
        _ spec: ActionSpec, _ event: AlertEvent, alert: JournalEntry? = nil
    ) -> [(String, ByteString)] {
        (alert ?? AlertMessage.entry(event)).fields + [
            ("CLOSEWAIT_ACTION", ByteString(spec.name)), ("CLOSEWAIT_ACTION_WHAT", ByteString(what(spec))),
            ("CLOSEWAIT_ALERT_MESSAGE_ID", ByteString(MessageID.of(event.kind))),
        ]
    }

    static func subject(_ event: AlertEvent) -> String {
        guard let p = event.process else { return "the host" }
        return p.details.label + p.details.whereItRuns
    }

    /// Before: `action "page": exec … for java[4242] (orders.service) — critical fd-exhaustion`.
    public static func before(_ planned: ActionPlanner.Planned) -> JournalEntry {
        let spec = planned.spec, event = planned.event
        let head =
            "action \"\(Escape.line(spec.name))\": \(what(spec)) for \(subject(event)) — \(event.level.name) \(event.reason.rawValue) (rule \(Escape.line(event.rule)))"
        var fields = fields(spec, event)
        switch planned.decision {
        case .run:
            fields.append(("CLOSEWAIT_ACTION_STATE", "started"))
            return JournalEntry(
                message: head + ": started", priority: .notice, messageID: MessageID.actionStarted, fields: fields)
        case .dryRun:
            fields.append(("CLOSEWAIT_ACTION_STATE", "dry-run"))
            return JournalEntry(
                message: head + ": dry run, nothing done (dry_run = true)", priority: .notice,
                messageID: MessageID.actionStarted, fields: fields)
        case .skipped(let why):
            fields += [("CLOSEWAIT_ACTION_STATE", "skipped"), ("CLOSEWAIT_ACTION_SKIPPED", ByteString(why))]
            return JournalEntry(
                message: head + ": not run (\(why))", priority: .notice, messageID: MessageID.actionSkipped,
                fields: fields)
        }
    }

    /// After: how it ended, how long it took, and the output it wrote (bounded).
    public static func after(
        _ planned: ActionPlanner.Planned, outcome: Outcome, seconds: Double, output: [UInt8], outputCut: Int
    ) -> JournalEntry {
        let spec = planned.spec, event = planned.event
        var message =
            "action \"\(Escape.line(spec.name))\" for \(subject(event)) \(outcome.phrase) after \(TimeSpan.format(seconds))"
        if outputCut > 0 { message += "; its output was cut after \(output.count) bytes (\(outputCut) more dropped)" }
        var fields =
            fields(spec, event) + [
                ("CLOSEWAIT_ACTION_STATE", "finished"),
                ("CLOSEWAIT_ACTION_RESULT", ByteString(outcome.succeeded ? "success" : "failure")),
                ("CLOSEWAIT_ACTION_SECONDS", ByteString(String(format3(seconds)))),
            ]
        switch outcome {
        case .exited(let code): fields.append(("CLOSEWAIT_ACTION_EXIT_STATUS", ByteString(String(code))))
        case .signalled(let signal): fields.append(("CLOSEWAIT_ACTION_SIGNAL", ByteString(String(signal))))
        case .timedOut: fields.append(("CLOSEWAIT_ACTION_TIMEOUT", "1"))
        case .failedToStart(let why): fields.append(("CLOSEWAIT_ACTION_ERROR", ByteString(why)))
        case let .destroyed(count, refused, gone):
            fields += [
                ("CLOSEWAIT_ACTION_DESTROYED", ByteString(String(count))),
                ("CLOSEWAIT_ACTION_REFUSED", ByteString(String(refused.values.reduce(0, +)))),
                ("CLOSEWAIT_ACTION_GONE", ByteString(String(gone))),
            ]
            if !refused.isEmpty {
                fields.append(("CLOSEWAIT_ACTION_ERROR", ByteString(refused.keys.sorted().joined(separator: "; "))))
            }
        case let .restarted(unit, why, before, after, state, _):
            fields += [
                ("CLOSEWAIT_ACTION_UNIT", ByteString(unit)), ("CLOSEWAIT_ACTION_WHY", ByteString(why)),
                ("CLOSEWAIT_ACTION_MAIN_PID_BEFORE", ByteString(String(before))),
                ("CLOSEWAIT_ACTION_MAIN_PID_AFTER", ByteString(String(after))),
                ("CLOSEWAIT_ACTION_UNIT_STATE", ByteString(state)),
            ]
        case let .wouldRestart(unit, why):
            fields += [("CLOSEWAIT_ACTION_UNIT", ByteString(unit)), ("CLOSEWAIT_ACTION_WHY", ByteString(why))]
        case .refused(let why), .busError(let why): fields.append(("CLOSEWAIT_ACTION_ERROR", ByteString(why)))
        }
        // The command's output as it wrote it: a field keeps its bytes; MESSAGE stays one line.
        if !output.isEmpty { fields.append(("CLOSEWAIT_ACTION_OUTPUT", ByteString(output))) }
        return JournalEntry(
            message: message, priority: outcome.succeeded ? .notice : .warning, messageID: MessageID.actionFinished,
            fields: fields)
    }

    /// The environment of an `exec`: the alert's fields as CLOSEWAIT_* variables, every value
    /// escaped (a process's bytes never reach the command raw: no newline, no control, no
    /// invalid UTF-8), and a fixed PATH.
    public static func environment(_ planned: ActionPlanner.Planned) -> [String] {
        var seen = Set<String>()
        var out = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
        let alert = AlertMessage.entry(planned.event)
        for (name, value) in fields(planned.spec, planned.event, alert: alert) where seen.insert(name).inserted {
            out.append(name + "=" + value.escaped)
        }
        out.append("CLOSEWAIT_MESSAGE=" + Escape.line(alert.message))
        return out
    }

    static func format3(_ seconds: Double) -> String {
        let millis = Int((seconds * 1000).rounded())
        return "\(millis / 1000).\(String(repeating: "0", count: 3 - String(millis % 1000).count))\(millis % 1000)"
    }
}

extension MessageID {
    /// An action started for an alert, or its dry run.
    public static let actionStarted = "1f7c2e9a4b6d4c08a3e5f9d1b7c2a604"
    /// An action held back by its rails (cooldown, max_per_hour, too many running).
    public static let actionSkipped = "6a0d3b8e2f1c47d59e4a8c7b3d2f1e05"
    /// An action finished: exit status, signal, timeout, how long it took, its output.
    public static let actionFinished = "c4e8a1f07b3d4e2a9f6c5b8d1e7a3f92"
}
