/// JournalPriority is syslog's severity, as the journal's PRIORITY field takes it.
public enum JournalPriority: Int, Sendable {
    case critical = 2
    case error = 3
    case warning = 4
    case notice = 5
    case info = 6
    case debug = 7
}

/// JournalEntry is a message with its structured fields, ready for sd_journal_sendv or stderr.
/// `message` is for a person and holds untrusted text only in escaped form; `fields` carry
/// values exactly (a comm with a newline or invalid UTF-8 stays those bytes in the journal).
public struct JournalEntry: Sendable, Equatable {
    public var message: String
    public var priority: JournalPriority
    public var messageID: String?
    /// Extra fields, names already in journal form (`CLOSEWAIT_PID`).
    public var fields: [(String, ByteString)]

    public init(
        message: String, priority: JournalPriority, messageID: String? = nil, fields: [(String, ByteString)] = []
    ) {
        self.message = message
        self.priority = priority
        self.messageID = messageID
        self.fields = fields
    }

    public static func == (a: JournalEntry, b: JournalEntry) -> Bool {
        a.message == b.message && a.priority == b.priority && a.messageID == b.messageID
            && a.fields.map { $0.0 } == b.fields.map { $0.0 } && a.fields.map { $0.1 } == b.fields.map { $0.1 }
    }

    /// A field's value as text (invalid UTF-8 replaced), for tests and summaries.
    public func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1.lossy }

    /// A swift-log style metadata key (`closewait.pid`) as a journal field name
    /// (`CLOSEWAIT_PID`): upper case, A–Z 0–9 and `_` only, not starting with `_` or a digit.
    public static func fieldName(_ key: String) -> String {
        var name = String(
            key.uppercased().unicodeScalars.map { scalar -> Character in
                (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9") ? Character(scalar) : "_"
            })
        while name.hasPrefix("_") { name.removeFirst() }
        if let first = name.first, first.isNumber { name = "F" + name }
        return name.isEmpty ? "FIELD" : String(name.prefix(64))
    }
}
