/// AttributionHealth is what one tick's /proc walk could not see, for STATUS, the journal and
/// the state file. Processes that exit mid-walk are normal; processes whose fd tables may not
/// be read while sampled sockets have no known owner mean the owners shown may be incomplete
/// (a capability dropped from the unit, /proc mounted with hidepid=).
public struct AttributionHealth: Equatable, Sendable {
    /// Processes whose fd table could not be read (EACCES/EPERM).
    public var unreadable: Int
    /// Processes that exited while being read.
    public var vanished: Int
    /// Other per-process read errors.
    public var otherErrors: Int
    /// Sampled sockets (inode not 0) with no owner found while some processes were unreadable.
    public var unattributed: Int

    public init(unreadable: Int = 0, vanished: Int = 0, otherErrors: Int = 0, unattributed: Int = 0) {
        self.unreadable = unreadable
        self.vanished = vanished
        self.otherErrors = otherErrors
        self.unattributed = unattributed
    }

    public init(_ snapshot: Snapshot) {
        self.init(
            unreadable: snapshot.statistics.permissionDenied, vanished: snapshot.statistics.vanished,
            otherErrors: snapshot.statistics.otherErrors, unattributed: snapshot.ownerUnreadable)
    }

    /// Some CLOSE_WAIT sockets may belong to processes we cannot read.
    public var degraded: Bool { unattributed > 0 }

    /// `attribution degraded: 580 processes unreadable (permission denied), 10210 sockets without a known owner`.
    public var summary: String {
        "attribution degraded: \(unreadable) \(unreadable == 1 ? "process" : "processes") unreadable (permission denied), "
            + "\(unattributed) \(unattributed == 1 ? "socket" : "sockets") without a known owner"
    }

    /// The journal entry when attribution becomes degraded.
    public func degradedEntry() -> JournalEntry {
        JournalEntry(
            message:
                "Attribution degraded: \(unreadable) processes' fd tables could not be read (permission denied) and "
                + "\(unattributed) CLOSE_WAIT sockets have no known owner; per-process alerts may miss their leaks. "
                + "The service needs CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, and /proc without hidepid=.",
            priority: .warning, messageID: MessageID.attributionDegraded, fields: fields)
    }

    /// The journal entry when it recovers.
    public func recoveredEntry() -> JournalEntry {
        JournalEntry(
            message: "Attribution recovered: every sampled CLOSE_WAIT socket has a readable owner again.",
            priority: .notice, messageID: MessageID.attributionRecovered, fields: fields)
    }

    var fields: [(String, ByteString)] {
        [
            ("CLOSEWAIT_UNREADABLE", ByteString(String(unreadable))),
            ("CLOSEWAIT_UNATTRIBUTED", ByteString(String(unattributed))),
            ("CLOSEWAIT_VANISHED", ByteString(String(vanished))),
            ("CLOSEWAIT_OTHER_ERRORS", ByteString(String(otherErrors))),
        ]
    }

}

/// In the state file: the four counts and whether attribution is degraded (derived, written
/// for readers; recomputed when read).
extension AttributionHealth: Codable {
    enum CodingKeys: String, CodingKey { case degraded, unreadable, unattributed, vanished, otherErrors }

    public func encode(to encoder: any Encoder) throws {
        var out = encoder.container(keyedBy: CodingKeys.self)
        try out.encode(degraded, forKey: .degraded)
        try out.encode(unreadable, forKey: .unreadable)
        try out.encode(unattributed, forKey: .unattributed)
        try out.encode(vanished, forKey: .vanished)
        try out.encode(otherErrors, forKey: .otherErrors)
    }

    public init(from decoder: any Decoder) throws {
        let item = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            unreadable: try item.decode(Int.self, forKey: .unreadable),
            vanished: try item.decode(Int.self, forKey: .vanished),
            otherErrors: try item.decode(Int.self, forKey: .otherErrors),
            unattributed: try item.decode(Int.self, forKey: .unattributed))
    }
}

/// AttributionMonitor turns per-tick health into journal entries on changes only: degraded
/// after `hold` degraded ticks in a row, recovered after `hold` healthy ones. Pure.
public struct AttributionMonitor: Sendable {
    public var hold = 2
    public private(set) var reported = false
    private var streak = 0

    public init() {}

    public mutating func update(_ health: AttributionHealth) -> JournalEntry? {
        if health.degraded != reported { streak += 1 } else { streak = 0 }
        guard streak >= hold else { return nil }
        streak = 0
        reported = health.degraded
        return reported ? health.degradedEntry() : health.recoveredEntry()
    }
}
