@testable import CloseWaitCore
import Testing

/// Tracker and policy together, with the shipped defaults, over simulated time: what an
/// operator sees from a real leak, a healthy pool, and a count hovering at a threshold.
@Suite struct ScenarioTests {
    /// Runs `minutes` of 5 s ticks; `inodes(t)` gives the process's CLOSE_WAIT inodes at t.
    static func simulate(
        _ settings: Settings = Settings(), minutes: Double, fdLimit: UInt64 = 1024,
        inodes: (Double) -> [UInt64]
    ) -> [(Double, AlertEvent)] {
        var tracker = Tracker(window: settings.window)
        var policy = AlertPolicy(settings: settings)
        var events: [(Double, AlertEvent)] = []
        var t = 0.0
        while t <= minutes * 60 {
            let current = inodes(t)
            let o = observation(pid: 4242, inodes: current, fdOpen: 100 + current.count, fdLimit: fdLimit)
            let statuses = tracker.update(now: t, observations: current.isEmpty ? [] : [o])
            for e in policy.evaluate(now: t, statuses: statuses, total: current.count) { events.append((t, e)) }
            t += settings.interval
        }
        return events
    }

    @Test func aClimbingLeakIsCaughtWithinMinutesAndPredictsExhaustion() {
        // +12 CLOSE_WAIT sockets a minute, from zero, for 45 minutes (540 at the end).
        let events = Self.simulate(minutes: 45) { t in (0..<Int(t / 5)).map { UInt64($0 + 1) } }
        let first = events.first { $0.1.kind == .crossed }
        #expect(first?.1.reason == .growth)
        #expect((first?.0 ?? .infinity) <= 4 * 60)  // half a window plus the hold
        let exhaustion = events.first { $0.1.reason == .fdExhaustion }
        #expect(exhaustion != nil)
        // Count: warning at 100 (~8 min), a reminder 30 min later, escalated at 500 (~42 min).
        let count = events.filter { $0.1.reason == .count }.map(\.1.kind)
        #expect(count == [.crossed, .reminder, .escalated])
        #expect(events.filter { $0.1.kind == .crossed && $0.1.reason == .growth }.count == 1)
        #expect(!events.contains { $0.1.kind == .recovered })
    }

    @Test func aBoundedPoolNeverAlerts() {
        // A pool keeping 40 idle CLOSE_WAIT sockets, recycling one every 30 s, for two hours.
        let events = Self.simulate(minutes: 120) { t in
            let first = UInt64(t / 30)
            return (first..<(first + 40)).map { $0 + 1 }
        }
        #expect(events.isEmpty)
    }

    @Test func aCountHoveringAtTheThresholdDoesNotFlap() {
        // 95…105 around count_warning = 100, changing every tick, for an hour.
        var s = Settings()
        s.thresholds.growthWarning = 0
        s.thresholds.growthCritical = 0
        let events = Self.simulate(s, minutes: 60) { t in
            let n = 95 + Int(t / 5) % 11
            return (0..<n).map { UInt64($0 + 1) }
        }
        // Count fires once (held 3 samples), never clears (never below 80), reminds after 30 min.
        let count = events.filter { $0.1.reason == .count }
        #expect(count.map(\.1.kind) == [.crossed, .reminder])
        #expect(count.first?.0 == 35)
        // The oldest sockets never close, so the age warning comes at 30 min, once.
        #expect(events.filter { $0.1.reason == .age }.map(\.1.kind) == [.crossed])
    }

    @Test func fixingTheLeakRecovers() {
        // Climbs to 150 over 12.5 minutes, then the process closes them all.
        let events = Self.simulate(minutes: 20) { t in t < 750 ? (0..<Int(t / 5)).map { UInt64($0 + 1) } : [] }
        let kinds = events.map(\.1.kind)
        #expect(kinds.contains(.crossed))
        #expect(events.last?.1.kind == .recovered)
        #expect(events.last?.1.gone == true)
        #expect(events.filter { $0.1.kind == .recovered }.count == events.filter { $0.1.kind == .crossed }.count)
    }
}

/// Issue 19: a fast leak is alerted fast, with its growth, and a pool warming up or turning
/// over is not.
@Suite struct FastLeakTests {
    @Test func aLeakOfSixtyAMinuteIsAlertedWithinAMinuteOfItsFirstSocket() {
        // One new CLOSE_WAIT socket a second from t = 1 s, shipped defaults (5 s ticks, hold 3).
        let events = ScenarioTests.simulate(minutes: 3) { t in (0..<Int(t)).map { UInt64($0 + 1) } }
        let first = events.first { $0.1.kind == .crossed }
        #expect(first?.1.reason == .growth)
        #expect((first?.0 ?? .infinity) - 1 <= 60)
        #expect(abs((first?.1.value ?? 0) - 60) < 1)
        #expect(first?.1.level == .critical)  // past growth_critical (30/min) at once
        // The early rate hands over to the fitted one without a second alert.
        #expect(events.filter { $0.1.reason == .growth }.map(\.1.kind) == [.crossed])
    }

    @Test func aPoolWarmingUpInOneBurstAndTurningOverNeverAlerts() {
        // 30 connections closed by the server at once after 20 s, then one replaced every 10 s.
        let events = ScenarioTests.simulate(minutes: 30) { t in
            guard t >= 20 else { return [] }
            let first = UInt64((t - 20) / 10)
            return (first..<(first + 30)).map { $0 + 1 }
        }
        #expect(events.isEmpty)
    }

    @Test func aSlowLeakWaitsForHalfAWindow() {
        // +6/min: 10 new sockets take 100 s, so the early rate is robust only then.
        let events = ScenarioTests.simulate(minutes: 5) { t in (0..<Int(t / 10)).map { UInt64($0 + 1) } }
        let first = events.first { $0.1.kind == .crossed }
        #expect(first?.1.reason == .growth)
        #expect((first?.0 ?? 0) >= 100)
    }
}
