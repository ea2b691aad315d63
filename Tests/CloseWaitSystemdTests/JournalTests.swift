import CloseWaitCore
@testable import CloseWaitSystemd
import Logging
import Testing

@Suite struct JournalTests {
    @Test func logHandlerMapsLevelsMetadataAndMessageID() {
        let entry = JournalLogHandler.entry(
            level: .error, message: "config rejected",
            metadata: ["closewait.pid": "42", "message_id": "abc", "closewait.top-peer": "10.0.0.5:80"])
        #expect(entry.priority == .error)
        #expect(entry.messageID == "abc")
        #expect(entry.field("CLOSEWAIT_PID") == "42")
        #expect(entry.field("CLOSEWAIT_TOP_PEER") == "10.0.0.5:80")
        #expect(entry.field("MESSAGE_ID") == nil)
        #expect(JournalLogHandler.entry(level: .debug, message: "x", metadata: [:]).priority == .debug)
        #expect(JournalLogHandler.entry(level: .critical, message: "x", metadata: [:]).priority == .critical)
    }

    @Test func stderrLineIsOneLineWithFields() {
        let entry = JournalEntry(
            message: "two\nlines", priority: .warning, messageID: "id1",
            fields: [("CLOSEWAIT_PID", "7"), ("CLOSEWAIT_UNIT", "")])
        let line = JournalWriter.line(entry)
        #expect(line.hasSuffix(": warning: two\\nlines | MESSAGE_ID=id1 CLOSEWAIT_PID=7\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func journalDetectionLooksForTheSocket() {
        #expect(!JournalWriter.journalListening(path: "/nonexistent/socket"))
        #expect(!JournalWriter.journalListening(path: "/etc/hostname"))  // a file, not a socket
        #expect(!JournalWriter(target: .stderr).usesJournal)
        #expect(JournalWriter(target: .journal).usesJournal)
    }
}
