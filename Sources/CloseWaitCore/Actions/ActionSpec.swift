/// ActionSpec is one `[[action]]` table: which alerts it answers (levels, reasons, the rule that
/// governed the alert, and the same `match_*` keys as rules) and what it does, with its rails.
/// Nothing acts unless a table says so.
public struct ActionSpec: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// argv, run directly (never through a shell), the alert in CLOSEWAIT_* variables.
        case exec([String])
        /// SOCK_DESTROY for the process's CLOSE_WAIT sockets to the alert's top peers (its fds
        /// stay open until it closes them). Needs CAP_NET_ADMIN (a drop-in).
        case destroySockets
        /// Ask systemd (D-Bus) to restart the process's own `.service` unit, named exactly in
        /// the action's `match_unit` (the polkit rule allows that unit and no other).
        case restartUnit(String)
    }

    public var name: String
    public var kind: Kind
    /// Alerts of these levels (empty: any).
    public var levels: Set<AlertLevel> = []
    /// Alerts for these reasons (empty: any per-process reason).
    public var reasons: Set<AlertReason> = []
    /// Alerts governed by these rules (`default` for the `[thresholds]`; empty: any).
    public var rules: Set<String> = []
    /// The process must match these globs, as a rule's `match_*` would (nil: any process).
    public var match: Rule?
    /// Seconds before this action may run again for the same process.
    public var cooldown = 600.0
    /// Journal what would be done and do nothing.
    public var dryRun = false
    /// Seconds an `exec` may run before it is killed (SIGTERM, then SIGKILL 2 s later); for
    /// `restart_unit`, how long the restart job is waited for (systemd goes on with it).
    public var timeout = 30.0

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The unit a `restart_unit` restarts, nil for other kinds.
    public var unit: String? {
        if case let .restartUnit(unit) = kind { unit } else { nil }
    }

    /// Whether this action answers `event`: a firing per-process alert (crossed, escalated or
    /// a reminder; never a recovery, never a host-wide one) that every given filter admits.
    public func answers(_ event: AlertEvent) -> Bool {
        guard event.kind != .recovered, !event.reason.isHostWide, let process = event.process else { return false }
        if !levels.isEmpty && !levels.contains(event.level) { return false }
        if !reasons.isEmpty && !reasons.contains(event.reason) { return false }
        if !rules.isEmpty && !rules.contains(event.rule) { return false }
        if let match, !match.matches(process.details) { return false }
        return true
    }
}

/// ActionSettings are the `[actions]` table's daemon-wide rails and every `[[action]]`.
public struct ActionSettings: Equatable, Sendable {
    public var specs: [ActionSpec] = []
    /// Actions started at most in any hour, all actions and processes together (dry runs too).
    public var maxPerHour = 6
    /// Actions running at once at most; one more is skipped, said.
    public static let maxRunning = 4

    public init() {}
}
