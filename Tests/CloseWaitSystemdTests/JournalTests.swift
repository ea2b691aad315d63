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

    /// `--log json`: one object per line with the same fields, a process's bytes escaped, and
    /// a time log shippers parse.
    @Test func jsonLinesCarryTheSameFields() throws {
        let entry = JournalEntry(
            message: "java[7] (pod shop/orders, container app) holds 6", priority: .warning, messageID: "id1",
            fields: [
                ("CLOSEWAIT_PID", "7"), ("CLOSEWAIT_COMM", ByteString([0x6a, 0x0a, 0xff])), ("CLOSEWAIT_UNIT", ""),
            ])
        let line = JournalWriter.jsonLine(entry, wallTime: 1_796_168_405.123)
        #expect(
            line.hasPrefix(#"{"time":"2026-12-01T23:40:05.123Z","level":"warning","identifier":"closewaitd","pid":"#))
        #expect(
            line.hasSuffix(
                #","message":"java[7] (pod shop/orders, container app) holds 6","MESSAGE_ID":"id1","CLOSEWAIT_PID":"7","CLOSEWAIT_COMM":"j\\n\\xff"}"#
                    + "\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
        let parsed = try JSONParser.parse(Array(line.utf8.dropLast()))
        guard case let .object(members) = parsed else { Issue.record("not an object"); return }
        #expect(!members.contains { $0.0 == "CLOSEWAIT_UNIT" })
    }

    @Test func journalDetectionLooksForTheSocket() {
        #expect(!JournalWriter.journalListening(path: "/nonexistent/socket"))
        #expect(!JournalWriter.journalListening(path: "/etc/hostname"))  // a file, not a socket
        #expect(!JournalWriter(target: .stderr).usesJournal)
        #expect(JournalWriter(target: .journal).usesJournal)
    }
}
