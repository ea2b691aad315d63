@testable import CloseWaitCore
import Testing

@Suite struct AlertMessageTests {
    @Test func crossedAlertReadsLikeTheIssueExample() {
        let o = observation(pid: 4242, inodes: Array(1...57), fdOpen: 910, fdLimit: 1024)
        var peers = [
            PeerCount(endpoint: Endpoint(address: .v4(10, 0, 0, 5), port: 8080), count: 41),
            PeerCount(endpoint: Endpoint(address: .v4(10, 0, 0, 6), port: 8080), count: 16),
        ]
        peers.sort { $0.count > $1.count }
        let status = ProcessStatus(
            details: o.details, count: 57, peers: peers, growthPerMinute: 12, oldestAge: 840,
            since: 0, predictedExhaustion: 570)
        let event = AlertEvent(
            kind: .crossed, reason: .count, level: .warning, process: status, total: 60,
            value: 57, threshold: 50, rule: "default")
        let entry = AlertMessage.entry(event)
        #expect(
            entry.message.hasPrefix(
                "java[4242] (orders.service) holds 57 CLOSE_WAIT sockets (+12/min, oldest 14min); 41 to 10.0.0.5:8080; fds 910/1024, exhausted in ~9min"
            ))
        #expect(entry.message.contains("The peers closed these connections and java never closed its side."))
        #expect(entry.priority == .warning)
        #expect(entry.messageID == MessageID.crossed)
        for (name, value) in [
            ("CLOSEWAIT_PID", "4242"), ("CLOSEWAIT_COMM", "java"), ("CLOSEWAIT_EXE", "/usr/bin/java"),
            ("CLOSEWAIT_UNIT", "orders.service"), ("CLOSEWAIT_COUNT", "57"),
            ("CLOSEWAIT_GROWTH_PER_MIN", "12.0"), ("CLOSEWAIT_OLDEST_AGE_SEC", "840"),
            ("CLOSEWAIT_TOP_PEER", "10.0.0.5:8080"), ("CLOSEWAIT_FD_OPEN", "910"),
            ("CLOSEWAIT_FD_LIMIT", "1024"), ("CLOSEWAIT_RULE", "default"), ("CLOSEWAIT_LEVEL", "warning"),
            ("CLOSEWAIT_THRESHOLD", "50"), ("CLOSEWAIT_REASON", "count"),
        ] {
            #expect(entry.field(name) == value, "\(name)")
        }
        // Sent before the process could be looked at: the catalog's "Diagnosis: @…@" line
        // still gets values, not the literal placeholders.
        #expect(entry.field("CLOSEWAIT_DIAGNOSIS") == "unknown")
        #expect(entry.field("CLOSEWAIT_EVIDENCE") == "not looked at this time; closewaitd explain 4242 looks now")
        #expect(!entry.message.contains("To fix"))
    }

    @Test func prioritiesAndIDsPerKind() {
        let status = AlertPolicyTests.status(30)
        func entry(_ kind: AlertKind, _ level: AlertLevel, gone: Bool = false) -> JournalEntry {
            AlertMessage.entry(
                AlertEvent(
                    kind: kind, reason: .count, level: level, process: status, total: 30,
                    value: 30, threshold: 20, rule: "default", gone: gone))
        }
        #expect(entry(.escalated, .critical).priority == .critical)
        #expect(entry(.escalated, .critical).messageID == MessageID.escalated)
        #expect(entry(.reminder, .warning).message.hasPrefix("still: "))
        #expect(entry(.recovered, .warning).priority == .notice)
        #expect(entry(.recovered, .warning).field("CLOSEWAIT_LEVEL") == "recovered")
        #expect(entry(.recovered, .warning, gone: true).message.contains("no longer holds CLOSE_WAIT sockets"))
        let host = AlertMessage.entry(
            AlertEvent(
                kind: .crossed, reason: .total, level: .critical, process: nil, total: 6000,
                value: 6000, threshold: 5000, rule: "host"))
        #expect(
            host.priority == .critical && host.field("CLOSEWAIT_COUNT") == "6000" && host.field("CLOSEWAIT_PID") == nil)
        #expect(
            Set([
                MessageID.crossed, MessageID.escalated, MessageID.reminder, MessageID.recovered,
                MessageID.samplerFailure,
                MessageID.configReloaded, MessageID.configRejected, MessageID.started,
            ]).count == 8)
    }

    @Test func fieldNamesFromMetadataKeys() {
        #expect(JournalEntry.fieldName("closewait.pid") == "CLOSEWAIT_PID")
        #expect(JournalEntry.fieldName("_secret") == "SECRET")
        #expect(JournalEntry.fieldName("9lives") == "F9LIVES")
    }

    @Test func statusLine() {
        #expect(StatusLine.render(statuses: [], alerting: 0, total: 0) == "No CLOSE_WAIT sockets; watching.")
        let line = StatusLine.render(
            statuses: [AlertPolicyTests.status(57, pid: 4242), AlertPolicyTests.status(3, pid: 7)], alerting: 2,
            total: 61)
        #expect(line == "2 processes with CLOSE_WAIT, 2 alerting; max java[4242] 57; total 61")
    }
}

/// Attribution health: said on changes only, and in STATUS while it lasts.
@Suite struct AttributionHealthTests {
    @Test func degradedAndRecoveredAreSaidOnceAfterTheHold() {
        var monitor = AttributionMonitor()
        let bad = AttributionHealth(unreadable: 580, vanished: 2, otherErrors: 0, unattributed: 10210)
        let good = AttributionHealth(unreadable: 1, vanished: 0, otherErrors: 0, unattributed: 0)
        #expect(monitor.update(good) == nil)
        #expect(monitor.update(bad) == nil)  // one tick is not yet a state
        let degraded = monitor.update(bad)
        #expect(degraded?.messageID == MessageID.attributionDegraded)
        #expect(degraded?.field("CLOSEWAIT_UNATTRIBUTED") == "10210")
        #expect(degraded?.priority == .warning)
        #expect(monitor.update(bad) == nil)
        #expect(monitor.update(good) == nil)
        #expect(monitor.update(bad) == nil)  // a flap does not recover it
        #expect(monitor.update(good) == nil)
        #expect(monitor.update(good)?.messageID == MessageID.attributionRecovered)
        #expect(monitor.update(good) == nil)
    }

    @Test func statusSaysDegradedInsteadOfNoSockets() {
        let bad = AttributionHealth(unreadable: 580, vanished: 0, otherErrors: 0, unattributed: 10210)
        #expect(
            StatusLine.render(statuses: [], alerting: 0, total: 10210, health: bad)
                == "10210 CLOSE_WAIT sockets, no owner known; attribution degraded: 580 processes unreadable (permission denied), 10210 sockets without a known owner"
        )
        #expect(StatusLine.render(statuses: [], alerting: 0, total: 0) == "No CLOSE_WAIT sockets; watching.")
    }
}
