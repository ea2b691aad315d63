@testable import CloseWaitCore
import Testing

/// The state file's one schema: what the daemon writes is what `status` reads.
@Suite struct StateDocumentTests {
    @Test func aTickRoundTripsThroughJSON() throws {
        let o = observation(pid: 4242, inodes: [1, 2, 3], comm: "\u{1b}[2Jjava\n")
        let status = ProcessStatus(
            details: o.details, count: 3, peers: o.peers, growthPerMinute: 1.25, oldestAge: 90.7,
            since: 0, predictedExhaustion: 1e300)
        let document = StateDocument(
            statuses: [status], firing: [(o.details.identity, .count, .warning), (nil, .total, .critical)],
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
        (
            StateDocumentTests.document(
                process:
                    #""pid": -1, "startTime": 1, "comm": "x", "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok", "reasons": []"#
            ),
            "processes[0].pid: -1 is out of range"
        ),
        (
            StateDocumentTests.document(
                process:
                    #""pid": 7, "startTime": 1, "comm": "x", "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok""#
            ),
            "processes[0].reasons: missing"
        ),
        (
            StateDocumentTests.document(
                process:
                    #""pid": 7, "startTime": 1, "comm": 3, "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok", "reasons": []"#
            ),
            "processes[0].comm: not a string"
        ),
        (
            StateDocumentTests.document(
                process:
                    #""pid": 4294967296, "startTime": 1, "comm": "x", "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok", "reasons": []"#
            ),
            "processes[0].pid: 4294967296 is out of range"
        ),
        (
            StateDocumentTests.document(
                process:
                    #""pid": 7, "startTime": 1, "comm": "x", "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok", "reasons": [], "ageHistogram": [1, -2]"#
            ),
            "processes[0].ageHistogram: not an array of counts"
        ),
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

    /// A state file the previous release's daemon wrote (0.1.0 at 444608e, two leaking
    /// holders, diagnosed): read by this one with the same meaning, and written again with
    /// the same keys in the same order and the same values (nulls kept); keys added since
    /// come after them.
    @Test func aStateFileOfThePreviousReleaseReadsAndRendersTheSame() throws {
        let bytes = try Fixture.bytes("state-previous-release.json")
        let document = try StateDocument.decode(bytes)
        #expect(document.processes.count == 2)
        #expect(document.processes[0].diagnosis == "abandoned-connections")
        #expect(document.processes[0].reasons == ["count", "growth"])
        #expect(document.processes[0].unit == nil && document.processes[0].ageHistogram == [35, 0, 0, 0, 0])
        #expect(document.attribution == AttributionHealth(unreadable: 1))
        // Every key of the old file, in its order and with its value; new keys only after them.
        func keepsOld(_ old: JSONValue, _ new: JSONValue) -> Bool {
            switch (old, new) {
            case let (.object(o), .object(n)):
                return o.count <= n.count && zip(o, n).allSatisfy { $0.0 == $1.0 && keepsOld($0.1, $1.1) }
            case let (.array(o), .array(n)):
                return o.count == n.count && zip(o, n).allSatisfy { keepsOld($0, $1) }
            default:
                return old == new
            }
        }
        #expect(keepsOld(try JSONParser.parse(bytes), document.json()))
        #expect(!keepsOld(try JSONParser.parse(bytes), .object([])))
    }

    @Test func aFileFromBefore02HasNoWarningsAndNoAttribution() throws {
        let text = Self.document(
            process:
                #""pid": 7, "startTime": 1, "comm": "x", "closeWait": 1, "oldestAgeSeconds": 0, "fdOpen": 1, "level": "ok", "reasons": []"#
        )
        let document = try StateDocument.decode(Array(text.utf8))
        #expect(document.warnings.isEmpty && document.attribution == nil && document.processes[0].exe == nil)
    }

    /// A whole document around one process's members (every other key valid).
    static func document(process: String) -> String {
        #"{"version": 1, "daemonPid": 9, "updatedAt": 1.5, "interval": 5.0, "ticks": 1, "status": "s", "total": 1, "hostLevel": "ok", "processes": [{"#
            + process + "}]}"
    }

    @Test func parserReadsTheJSONItNeeds() throws {
        let value = try JSONParser.parse(
            Array(#"{"a": [1, -2.5e3, true, null, "x\u00e9\n\ud83d\ude00"], "b": 9223372036854775807}"#.utf8))
        #expect(value["a"] == .array([.int(1), .double(-2500), .bool(true), .null, .string("xé\n😀")]))
        #expect(value["b"] == .int(Int64.max))
        #expect(try JSONParser.parse(Array("18446744073709551616".utf8)) == .double(18446744073709551616))
    }
}
