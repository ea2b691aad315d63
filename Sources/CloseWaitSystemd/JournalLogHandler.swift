import CloseWaitCore
import Logging

/// JournalLogHandler is a swift-log handler that writes to the journal through a
/// JournalWriter; metadata keys become journal fields (`closewait.pid` -> `CLOSEWAIT_PID`),
/// and the `message_id` key becomes MESSAGE_ID.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let writer: JournalWriter

    public init(writer: JournalWriter) {
        self.writer = writer
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        writer.send(
            Self.entry(
                level: event.level, message: event.message, metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }

    /// The journal entry for a log call; separate so tests can check the mapping.
    public static func entry(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata) -> JournalEntry {
        let priority: JournalPriority =
            switch level {
            case .trace, .debug: .debug
            case .info: .info
            case .notice: .notice
            case .warning: .warning
            case .error: .error
            case .critical: .critical
            }
        var messageID: String?
        var fields = [(String, ByteString)]()
        for key in metadata.keys.sorted() {
            let value = "\(metadata[key]!)"
            if key == "message_id" { messageID = value; continue }
            fields.append((JournalEntry.fieldName(key), ByteString(value)))
        }
        return JournalEntry(message: message.description, priority: priority, messageID: messageID, fields: fields)
    }
}
