@testable import CloseWaitCore
import Testing

/// The state file's one schema: what the daemon writes is what `status` reads.
@Suite struct StateDocumentTests {
    @Test func aTickRoundTripsThroughJSON() throws {
        let o = observation(pid: 4242, inodes: [1, 2, 3], comm: "\u{1b}[2Jjava\n")
        let status = ProcessStatus(details: o.details, count: 3, peers: o.peers, growthPerMinute: 1.25, oldestAge: 90.7,
                                   since: 0, predictedExhaustion: 1e300)
        let document = StateDocument(statuses: [status], firing: [(o.details.identity, .count, .warning), (nil, .total, .critical)],
                                     total: 3, status: "1 process", daemonPID: 99, ticks: 7, wallTime: 1_764_126_000.25, interval: 5)
        let bytes = document.json().renderedBytes(pretty: true)
        let decoded = try StateDocument.decode(bytes)
        #expect(decoded == document)
        #expect(decoded.processes[0].comm == "\u{1b}[2Jjava\n")
        #expect(decoded.processes[0].exhaustionSeconds == Int64.max)
        #expect(decoded.hostLevel == "critical")
        #expect(decoded.processes[0].reasons == ["count"])
        let table = StateDocument.table(decoded, age: 2)
        #expect(table.contains("\\x1b[2Jjava\\n"))
        #expect(!table.contains("\u{1b}"))
    }

    @Test(arguments: [
        ("{", "invalid JSON at byte 1: expected a key"),
        ("{\"version\": 2}", "version: 2 is not a version this closewaitd reads"),
        ("{\"version\": 1, \"processes\": [{\"pid\": -1}]}", "processes[0].pid: -1 is out of range"),
        ("{\"version\": 1, \"processes\": [], \"daemonPid\": 1e300}", "daemonPid: not an integer"),
        (String(repeating: "[", count: 100), "invalid JSON at byte 33: nested deeper than 32"),
        ("{\"a\": \"\\ud800\"}", "invalid JSON at byte 13: lone surrogate"),
        ("\"raw\u{1}\"", "invalid JSON at byte 5: raw control character in a string"),
    ])
    func hostileDocumentsAreNamedErrors(text: String, message: String) {
        #expect(throws: Never.self) {
            do {
                _ = try StateDocument.decode(Array(text.utf8))
                Issue.record("decoded \(text)")
            } catch {
                #expect("\(error)" == message)
            }
        }
    }

    @Test func parserReadsTheJSONItNeeds() throws {
        let value = try JSONParser.parse(Array(#"{"a": [1, -2.5e3, true, null, "x\u00e9\n\ud83d\ude00"], "b": 9223372036854775807}"#.utf8))
        #expect(value["a"] == .array([.int(1), .double(-2500), .bool(true), .null, .string("xé\n😀")]))
        #expect(value["b"] == .int(Int64.max))
        #expect(try JSONParser.parse(Array("18446744073709551616".utf8)) == .double(18446744073709551616))
    }
}
