/// AlertReason is the condition an alert is about (`CLOSEWAIT_REASON`).
public enum AlertReason: String, Sendable, CaseIterable, Hashable {
    case count
    case growth
    case age
    case fdExhaustion = "fd-exhaustion"
    case total
    /// Host-wide: CLOSE_WAIT sockets no process's fd table holds (not the listen backlog).
    case unowned

    /// About the whole host, not one process.
    public var isHostWide: Bool { self == .total || self == .unowned }
}

public enum AlertLevel: Int, Sendable, Comparable, Hashable {
    case warning = 1
    case critical = 2

    public var name: String { self == .warning ? "warning" : "critical" }
    public static func < (a: AlertLevel, b: AlertLevel) -> Bool { a.rawValue < b.rawValue }
}

/// AlertKind is what happened to a condition; each kind has its own journal MESSAGE_ID.
public enum AlertKind: String, Sendable {
    case crossed, escalated, reminder, recovered
}

/// AlertEvent is one alert to send.
public struct AlertEvent: Sendable {
    public var kind: AlertKind
    public var reason: AlertReason
    /// The level firing (for `recovered`: the level that was firing).
    public var level: AlertLevel
    /// The process, or nil for the host-wide total.
    public var process: ProcessStatus?
    public var total: Int
    /// The measured value: count, sockets/min, seconds of age, seconds to exhaustion.
    public var value: Double?
    /// The threshold crossed (for `recovered`: the clear level).
    public var threshold: Double
    public var rule: String
    /// For `recovered`: the process no longer holds sampled sockets or has exited; `process`
    /// is then its last known status.
    public var gone = false
    /// For `recovered`: the process still holds its sockets but a rule (after a reload) now
    /// ignores it; the alert is withdrawn, not cleared.
    public var ignoredByRule: String?
    /// Why the process leaks, when the daemon could look (set before sending).
    public var diagnosis: (Diagnosis, Evidence)?
}
