@testable import CloseWaitCore
import Testing

/// Issue 17, rows 7 and 14: history follows the sockets across a hand-over, and rules are
/// matched once per process.
@Suite struct HandoverTests {
    /// A leaker that forks and exits every 8 s, the child inheriting the sockets, growing
    /// 60/min: with the shipped thresholds it must alert on growth and count like any leaker.
    @Test func aLeakerThatForksAndExitsKeepsItsHistoryAndAlerts() {
        var settings = Settings()
        settings.hold = .samples(3)
        var tracker = Tracker(window: settings.window)
        var policy = AlertPolicy(settings: settings)
        var pid: Int32 = 1000
        var inodes: [UInt64] = Array(1...200)
        var events = [AlertEvent]()
        var last: [ProcessStatus] = []
        for tick in 0..<40 {  // 200 s at 5 s
            let now = Double(tick) * 5
            if tick > 0 && tick % 2 == 0 { pid += 1 }  // a new pid every ~8-10 s
            inodes += (0..<5).map { UInt64(inodes.count + 1 + $0) }  // +60/min
            let o = observation(pid: pid, start: UInt64(pid), inodes: inodes, fdLimit: 100_000, comm: "leaker")
            last = tracker.update(now: now, observations: [o])
            policy.handOver(tracker.handovers)
            events += policy.evaluate(now: now, statuses: last, total: inodes.count)
            if tick % 2 == 0 && tick > 0 { #expect(tracker.handovers.count == 1, "tick \(tick)") }
        }
        #expect(last[0].oldestAge == 195, "ages are the sockets', not the newest pid's")
        #expect(last[0].growthPerMinute.map { abs($0 - 60) < 1 } == true)
        #expect(events.contains { $0.kind == .crossed && $0.reason == .count })
        #expect(events.contains { $0.kind == .crossed && $0.reason == .growth })
        #expect(!events.contains { $0.kind == .recovered }, "a hand-over is not a recovery")
        #expect(policy.firing.allSatisfy { $0.0 == nil || $0.0?.pid == pid })
        #expect(
            events.filter { $0.kind == .crossed && $0.reason == .count }.count == 1,
            "the alert carries over, not re-sent")
    }

    /// A process that is merely new (no gone holder shares its sockets) starts fresh.
    @Test func aNewProcessWithNewSocketsHasNoPredecessor() {
        var tracker = Tracker(window: 300)
        _ = tracker.update(now: 0, observations: [observation(pid: 1, inodes: [1, 2, 3])])
        _ = tracker.update(now: 5, observations: [observation(pid: 2, inodes: [7, 8])])
        #expect(tracker.handovers.isEmpty)
        // A new process sharing a present one's sockets (a forked child) continues a copy of
        // its history; the one it came from stays.
        let both = tracker.update(
            now: 10, observations: [observation(pid: 2, inodes: [7, 8]), observation(pid: 3, inodes: [7, 8])])
        #expect(tracker.handovers.map(\.from.pid) == [2] && tracker.handovers.map(\.to.pid) == [3])
        #expect(tracker.handovers.allSatisfy { !$0.fromGone })
        #expect(both.map(\.since) == [5, 5])
    }

    @Test func rulesAreMatchedOncePerProcessUntilItChangesOrTheConfigDoes() {
        var settings = Settings()
        settings.rules = (0..<1000).map { Rule(name: "r\($0)", matchUnit: "unit-\($0)-*.service") }
        var policy = AlertPolicy(settings: settings)
        let statuses = (0..<50).map { AlertPolicyTests.status(3, pid: Int32(100 + $0)) }
        _ = policy.evaluate(now: 0, statuses: statuses, total: 150)
        #expect(policy.rulesMatched == 50)
        _ = policy.evaluate(now: 5, statuses: statuses, total: 150)
        #expect(policy.rulesMatched == 0, "served from the cache")
        var exec = statuses
        exec[0].details.comm = "python3"
        _ = policy.evaluate(now: 10, statuses: exec, total: 150)
        #expect(policy.rulesMatched == 1, "the process that exec'd is matched again")
        policy.settings.rules.append(Rule(name: "new", matchComm: "java", ignore: true))
        _ = policy.evaluate(now: 15, statuses: exec, total: 150)
        #expect(policy.rulesMatched == 50, "a reload matches everyone again")
    }
}
