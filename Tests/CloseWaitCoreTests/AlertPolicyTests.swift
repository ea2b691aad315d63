@testable import CloseWaitCore
import Testing

@Suite struct AlertPolicyTests {
    static func settings(_ edit: (inout Settings) -> Void = { _ in }) -> Settings {
        var s = Settings()
        s.hold = .samples(2)
        s.reminder = 60
        s.cooldown = 30
        s.thresholds.countWarning = 10
        s.thresholds.countCritical = 20
        s.thresholds.growthWarning = 0
        s.thresholds.growthCritical = 0
        s.thresholds.ageWarning = 0
        s.thresholds.ageCritical = 0
        s.thresholds.exhaustionWarning = 0
        s.thresholds.exhaustionCritical = 0
        edit(&s)
        return s
    }

    static func status(
        _ count: Int, pid: Int32 = 42, growth: Double? = nil, age: Double = 0, exhaustion: Double? = nil,
        comm: String = "java", unit: String? = "orders.service"
    ) -> ProcessStatus {
        let o = observation(pid: pid, inodes: (0..<count).map { UInt64($0 + 1) }, comm: comm, unit: unit)
        return ProcessStatus(
            details: o.details, count: count, peers: o.peers, growthPerMinute: growth,
            oldestAge: age, since: 0, predictedExhaustion: exhaustion)
    }

    /// Runs counts one per 5 s and returns (time, kind, level) of each event.
    static func run(_ policy: inout AlertPolicy, counts: [Int], start: Double = 0) -> [(Double, AlertKind, AlertLevel)]
    {
        var out: [(Double, AlertKind, AlertLevel)] = []
        for (i, count) in counts.enumerated() {
            let now = start + Double(i) * 5
            for e in policy.evaluate(now: now, statuses: count < 0 ? [] : [status(count)], total: max(0, count)) {
                out.append((now, e.kind, e.level))
            }
        }
        return out
    }

    @Test func holdsThenFiresOnce() {
        var policy = AlertPolicy(settings: Self.settings())
        let events = Self.run(&policy, counts: [5, 12, 5, 12, 12, 12, 13])
        // 12 once is not enough (hold 2); the second run of 12 fires at its second sample.
        #expect(events.map(\.0) == [20])
        #expect(events.map(\.1) == [.crossed])
        #expect(events[0].2 == .warning)
    }

    @Test func holdAsTimeSpan() {
        var policy = AlertPolicy(settings: Self.settings { $0.hold = .duration(12) })
        let events = Self.run(&policy, counts: [12, 12, 12, 12])
        #expect(events.map(\.0) == [15])  // first seen at 0, held 12 s at t=15
    }

    @Test func escalatesAtOnceAndRecoversOnlyBelowTheClearLevel() {
        var policy = AlertPolicy(settings: Self.settings())
        // fire warning at t=5; jump to 25 escalates immediately at t=10; 9 is above the clear
        // level (10 × 0.8 = 8) so nothing; 7 recovers.
        let events = Self.run(&policy, counts: [12, 12, 25, 9, 9, 7])
        #expect(events.map(\.1) == [.crossed, .escalated, .recovered])
        #expect(events.map(\.0) == [5, 10, 25])
        #expect(events[1].2 == .critical)
    }

    @Test func remindsWhileFiringAndCoolsDownAfterRecovery() {
        var policy = AlertPolicy(settings: Self.settings())
        let firing = Self.run(&policy, counts: Array(repeating: 12, count: 30))  // 0…145 s
        #expect(firing.map(\.1) == [.crossed, .reminder, .reminder])
        #expect(firing.map(\.0) == [5, 65, 125])
        // Recover at 150, then back over the threshold: cooldown 30 s holds it until 180.
        let again = Self.run(&policy, counts: [1, 12, 12, 12, 12, 12, 12, 12], start: 150)
        #expect(again.map(\.1) == [.recovered, .crossed])
        #expect(again.map(\.0) == [150, 180])
    }

    @Test func processThatGoesAwayRecovers() {
        var policy = AlertPolicy(settings: Self.settings())
        let events = Self.run(&policy, counts: [12, 12, -1])
        #expect(events.map(\.1) == [.crossed, .recovered])
        let e = policy.evaluate(now: 100, statuses: [], total: 0)
        #expect(e.isEmpty)
    }

    @Test func rulesOverrideAndIgnoreFirstMatchWins() {
        var s = Self.settings { $0.hold = .samples(1) }
        var tight = Rule(name: "tight", matchUnit: "orders*.service", thresholds: s.thresholds)
        tight.thresholds.countWarning = 3
        tight.thresholds.countCritical = 4
        s.rules = [
            Rule(name: "pool", matchComm: "pgbouncer", ignore: true), tight,
            Rule(name: "never", matchUnit: "orders.service", ignore: true),
        ]
        var policy = AlertPolicy(settings: s)
        let events = policy.evaluate(
            now: 0,
            statuses: [
                Self.status(50, pid: 1, comm: "pgbouncer", unit: "orders.service"),
                Self.status(3, pid: 2),
                Self.status(9, pid: 3, unit: "other.service"),
            ], total: 62)
        #expect(events.count == 1)
        #expect(events[0].rule == "tight")
        #expect(events[0].process?.details.pid == 2)
        #expect(events[0].threshold == 3)
    }

    @Test func growthAgeExhaustionAndTotal() {
        var s = Self.settings { $0.hold = .samples(1) }
        s.thresholds.countWarning = 0
        s.thresholds.countCritical = 0
        s.thresholds.growthWarning = 5
        s.thresholds.ageWarning = 600
        s.thresholds.exhaustionWarning = 3600
        s.thresholds.exhaustionCritical = 600
        s.thresholds.minCount = 5
        s.totalWarning = 100
        var policy = AlertPolicy(settings: s)
        // Below min_count: growth, age and exhaustion stay quiet.
        #expect(
            policy.evaluate(now: 0, statuses: [Self.status(4, growth: 50, age: 9999, exhaustion: 1)], total: 4).isEmpty)
        let events = policy.evaluate(
            now: 5, statuses: [Self.status(6, growth: 6, age: 700, exhaustion: 300)], total: 150)
        let byReason = Dictionary(uniqueKeysWithValues: events.map { ($0.reason, $0) })
        #expect(Set(byReason.keys) == [.growth, .age, .fdExhaustion, .total])
        #expect(byReason[.fdExhaustion]?.level == .critical)
        #expect(byReason[.total]?.process == nil)
        // Exhaustion clears when the prediction moves beyond 3600 / 0.8 or growth stops.
        let later = policy.evaluate(
            now: 10, statuses: [Self.status(6, growth: 6, age: 700, exhaustion: 4000)], total: 150)
        #expect(later.isEmpty)
        let cleared = policy.evaluate(
            now: 15, statuses: [Self.status(6, growth: 6, age: 700, exhaustion: 4600)], total: 150)
        #expect(cleared.map(\.reason) == [.fdExhaustion])
        #expect(cleared.first?.kind == .recovered)
    }

    /// A reload adds a rule that ignores a process whose alert fires: the alert is withdrawn
    /// with the reason, and the message does not claim the sockets are gone.
    @Test func ignoringAFiringProcessWithdrawsItsAlertTruthfully() {
        var policy = AlertPolicy(settings: Self.settings())
        _ = policy.evaluate(now: 0, statuses: [Self.status(200)], total: 200)
        let fired = policy.evaluate(now: 5, statuses: [Self.status(200)], total: 200)
        #expect(fired.map(\.kind) == [.crossed])
        policy.settings = Self.settings { $0.rules = [Rule(name: "pool", matchComm: "java", ignore: true)] }
        let events = policy.evaluate(now: 10, statuses: [Self.status(200)], total: 200)
        #expect(events.count == 1)
        let event = events[0]
        #expect(event.kind == .recovered && event.ignoredByRule == "pool" && !event.gone)
        let entry = AlertMessage.entry(event)
        #expect(entry.field("CLOSEWAIT_COUNT") == "200")
        #expect(entry.message.contains("is now ignored by rule pool; it still holds 200 CLOSE_WAIT sockets"))
        #expect(!entry.message.contains("no longer holds"))
        #expect(policy.evaluate(now: 15, statuses: [Self.status(200)], total: 200).isEmpty)
        #expect(policy.firing.isEmpty)
    }

    /// Issue 17, row 13: sockets no process holds (SCM_RIGHTS in flight) raise a host-wide
    /// alert of their own once past unowned_warning; the listen backlog does not count.
    @Test func unownedSocketsRaiseAHostAlert() throws {
        var policy = AlertPolicy(
            settings: Self.settings {
                $0.unownedWarning = 100; $0.unownedCritical = 1000
            })
        var events = [AlertEvent]()
        for tick in 0..<4 { events += policy.evaluate(now: Double(tick) * 5, statuses: [], total: 900, unowned: 900) }
        let crossed = try #require(events.first { $0.reason == .unowned && $0.kind == .crossed })
        #expect(crossed.level == .warning && crossed.process == nil)
        let entry = AlertMessage.entry(crossed)
        #expect(entry.message.contains("900 CLOSE_WAIT sockets are held by no process's fd table"))
        #expect(entry.field("CLOSEWAIT_REASON") == "unowned" && entry.field("CLOSEWAIT_COUNT") == "900")
        #expect(entry.messageID == MessageID.unownedSockets)
        var snapshotLike = Snapshot(
            source: .netlink, states: [.closeWait],
            sockets: [
                SnapshotSocket(
                    record: AlertPolicyTests.record(inode: 0), owners: [], unownedReason: .listenBacklog, netns: nil),
                SnapshotSocket(
                    record: AlertPolicyTests.record(inode: 7), owners: [], unownedReason: .noOwnerFound, netns: nil),
            ], processes: [], statistics: ScanStatistics())
        #expect(snapshotLike.unownedHeld == 1, "the listen backlog is not held by anyone yet, and that is normal")
        snapshotLike.sockets = []
    }

    /// Issue 18: the STATUS line's "N alerting" counts processes, not the host-wide alerts.
    @Test func theAlertingCountIsProcessesOnly() {
        var policy = AlertPolicy(
            settings: Self.settings {
                $0.totalWarning = 10; $0.hold = .samples(1)
            })
        let statuses = [Self.status(12, pid: 1), Self.status(3, pid: 2)]
        _ = policy.evaluate(now: 0, statuses: statuses, total: 15)
        #expect(policy.firing.contains { $0.0 == nil && $0.1 == .total })
        let alerting = policy.alertingProcesses
        #expect(alerting == 1)
        #expect(StatusLine.render(statuses: statuses, alerting: alerting, total: 15).contains(", 1 alerting;"))
    }

    static func record(inode: UInt64) -> SocketRecord {
        SocketRecord(
            family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 40000),
            remote: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), inode: inode, uid: 0, recvQ: 1, sendQ: 0)
    }
}
