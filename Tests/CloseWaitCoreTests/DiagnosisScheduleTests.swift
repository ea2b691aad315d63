@testable import CloseWaitCore
import Testing

/// When the daemon looks closer at an alerting process, as values: budgets, the re-look
/// interval, the refresh order, hand-overs and forgetting.
@Suite struct DiagnosisScheduleTests {
    static func status(_ pid: Int32, count: Int = 50, pattern: GrowthPattern = .steady) -> ProcessStatus {
        var s = AlertPolicyTests.status(count, pid: pid)
        s.pattern = pattern
        return s
    }

    static func evidence(closeWait: Int = 50, established: Int = 0) -> Evidence {
        let peer = Endpoint(address: .v4(10, 0, 0, 5), port: 8080)
        return Evidence(
            closeWait: closeWait,
            peers: [
                PeerEvidence(
                    peer: peer, closeWait: closeWait, established: established, unread: 0, unreadBytes: 0,
                    unsent: 0, localPorts: nil)
            ],
            ages: nil, growthPerMinute: 10, pattern: .steady)
    }

    @Test func aTickLooksAtMostItsAlertBudgetAndOneRefresh() {
        var schedule = DiagnosisSchedule()
        let ids = (1...30).map { Self.status(Int32($0)).details.identity }
        schedule.beginTick(firing: Set(ids), handovers: [], clock: 100)
        let alertLooks = ids.filter { schedule.wantsLook($0, alert: true, now: 0, clock: 100) }.count
        #expect(alertLooks == 20)
        let refreshLooks = ids.filter { schedule.wantsLook($0, alert: false, now: 0, clock: 100) }.count
        #expect(refreshLooks == 1)
        // The next tick has its budget again.
        schedule.beginTick(firing: Set(ids), handovers: [], clock: 105)
        let look1 = schedule.wantsLook(ids[0], alert: true, now: 5, clock: 105)
        #expect(look1)
    }

    @Test func looksStopWhenTheTickHasSpentItsTime() {
        var schedule = DiagnosisSchedule()
        let id = Self.status(1).details.identity
        schedule.beginTick(firing: [id], handovers: [], clock: 100)
        #expect(schedule.deadline == 101)
        let look2 = schedule.wantsLook(id, alert: true, now: 0, clock: 101.5)
        #expect(!look2)
        let look3 = schedule.wantsLook(id, alert: true, now: 0, clock: 100.5)
        #expect(look3)
    }

    @Test func everyAlertGetsItsOwnLookAndARefreshWaitsTenMinutes() {
        var schedule = DiagnosisSchedule()
        let s = Self.status(7)
        let id = s.details.identity
        schedule.beginTick(firing: [id], handovers: [], clock: 0)
        _ = schedule.record(id, evidence: Self.evidence(), now: 1000)
        // A second alert in the same tick shares the look; an alert on a later tick looks again.
        let sameTick = schedule.wantsLook(id, alert: true, now: 1000, clock: 0)
        #expect(!sameTick)
        let laterTick = schedule.wantsLook(id, alert: true, now: 1005, clock: 0)
        #expect(laterTick)
        schedule.beginTick(firing: [id], handovers: [], clock: 0)
        let early = schedule.wantsLook(id, alert: false, now: 1599, clock: 0)
        #expect(!early)
        let due = schedule.wantsLook(id, alert: false, now: 1600, clock: 0)
        #expect(due)
    }

    @Test func aReusedLookSaysHowOldItIs() {
        var schedule = DiagnosisSchedule()
        let s = Self.status(7)
        schedule.beginTick(firing: [s.details.identity], handovers: [], clock: 0)
        _ = schedule.record(s.details.identity, evidence: Self.evidence(), now: 100)
        let again = schedule.reclassify(s, now: 140)
        #expect(again?.1.lookedSecondsAgo == 40)
        #expect(again?.1.summary.hasSuffix("kernel looked at 40s ago") == true)
    }

    @Test func withoutALookTheLastIsClassifiedAgainWithTodaysCount() {
        var schedule = DiagnosisSchedule()
        let s = Self.status(7, count: 2)
        let none = schedule.reclassify(s, now: 30)
        #expect(none == nil)
        schedule.beginTick(firing: [s.details.identity], handovers: [], clock: 0)
        let (first, _) = schedule.record(s.details.identity, evidence: Self.evidence(), now: 0)
        #expect(first.kind == .abandonedConnections)
        // Two sockets now: too few to tell; the kernel's side is the last look's.
        let again = schedule.reclassify(s, now: 30)
        #expect(again?.0.kind == .unknown)
        #expect(again?.1.closeWait == 2 && again?.1.peers.count == 1)
        #expect(schedule.entries[s.details.identity]?.at == 0)
    }

    @Test func refreshesGoToTheNeverLookedThenTheLongestUnrefreshed() {
        var schedule = DiagnosisSchedule()
        let statuses = (1...4).map { Self.status(Int32($0)) }
        let ids = statuses.map(\.details.identity)
        schedule.beginTick(firing: Set(ids), handovers: [], clock: 0)
        _ = schedule.record(ids[0], evidence: Self.evidence(), now: 30)
        _ = schedule.record(ids[1], evidence: Self.evidence(), now: 10)
        let order = schedule.refreshOrder(statuses, firing: Set(ids.dropLast())).map(\.details.pid)
        #expect(order == [3, 2, 1])
    }

    @Test func aSuccessorInheritsTheLookAndWhatStopsFiringIsForgotten() {
        var schedule = DiagnosisSchedule()
        let parent = Self.status(1).details.identity, child = Self.status(2).details.identity
        schedule.beginTick(firing: [parent], handovers: [], clock: 0)
        _ = schedule.record(parent, evidence: Self.evidence(), now: 5)
        schedule.beginTick(
            firing: [child], handovers: [Tracker.Handover(from: parent, to: child, fromGone: true)], clock: 10)
        #expect(schedule.entries[child]?.at == 5)
        #expect(schedule.entries[parent] == nil)
        schedule.beginTick(firing: [], handovers: [], clock: 20)
        #expect(schedule.entries.isEmpty)
    }
}
