@testable import CloseWaitCore
import Testing

func observation(
    pid: Int32 = 42, start: UInt64 = 1, inodes: [UInt64], fdOpen: Int? = nil, fdLimit: UInt64? = 1024,
    comm: String = "java", unit: String? = "orders.service", exe: String? = "/usr/bin/java"
) -> ProcessEntry {
    let details = ProcessDetails(
        identity: ProcessIdentity(pid: pid, startTime: start), comm: ByteString(comm), exe: exe.map { ByteString($0) },
        unit: unit.map { ByteString($0) }, fdOpen: fdOpen ?? inodes.count + 10, fdLimit: fdLimit)
    let peer = Endpoint(address: .v4(10, 0, 0, 5), port: 8080)
    return ProcessEntry(
        details: details, inodes: inodes, peers: inodes.isEmpty ? [] : [PeerCount(endpoint: peer, count: inodes.count)])
}

@Suite struct TrackerTests {
    @Test func ageCountsFromFirstSightingOfEachSocket() {
        var tracker = Tracker(window: 300)
        _ = tracker.update(now: 100, observations: [observation(inodes: [1, 2])])
        _ = tracker.update(now: 160, observations: [observation(inodes: [1, 2, 3])])
        // Socket 1 closes; 2 is now the oldest, first seen at 100.
        let status = tracker.update(now: 220, observations: [observation(inodes: [2, 3])])
        #expect(status[0].oldestAge == 120)
        #expect(status[0].since == 100)
        let later = tracker.update(now: 280, observations: [observation(inodes: [3])])
        #expect(later[0].oldestAge == 120)  // 3 first seen at 160
    }

    @Test func growthNeedsHalfAWindowThenMeasuresOverIt() {
        var tracker = Tracker(window: 120)
        var statuses: [ProcessStatus] = []
        var inodes: [UInt64] = []
        for step in 0...12 {  // one sample every 10 s, +2 sockets each: 12/min
            inodes += [UInt64(2 * step + 1), UInt64(2 * step + 2)]
            statuses = tracker.update(now: Double(step * 10), observations: [observation(inodes: inodes)])
            if step < 6 { #expect(statuses[0].growthPerMinute == nil, "step \(step)") }
        }
        #expect(statuses[0].growthPerMinute == 12)
        #expect(tracker.histories.values.first!.samples.count <= 14)  // bounded by the window
    }

    @Test func predictsFdExhaustionFromGrowthAndHeadroom() {
        var tracker = Tracker(window: 60)
        _ = tracker.update(now: 0, observations: [observation(inodes: Array(1...10), fdOpen: 900, fdLimit: 1000)])
        let status = tracker.update(
            now: 60, observations: [observation(inodes: Array(1...30), fdOpen: 920, fdLimit: 1000)])
        #expect(status[0].growthPerMinute == 20)
        #expect(status[0].predictedExhaustion == 240)  // 80 fds left at 20/min
        let unlimited = Tracker(window: 60)
        var u = unlimited
        _ = u.update(now: 0, observations: [observation(inodes: [1], fdLimit: nil)])
        #expect(
            u.update(now: 60, observations: [observation(inodes: [1, 2], fdLimit: nil)])[0].predictedExhaustion == nil)
    }

    @Test func exitedProcessesAreDroppedAndPidReuseIsANewProcess() {
        var tracker = Tracker(window: 300)
        _ = tracker.update(now: 0, observations: [observation(pid: 1, inodes: [1]), observation(pid: 2, inodes: [2])])
        #expect(tracker.trackedProcesses == 2)
        _ = tracker.update(now: 5, observations: [observation(pid: 1, inodes: [1])])
        #expect(tracker.trackedProcesses == 1)
        // Same pid, new start time, its own sockets: history starts over. (Holding the dead
        // process's very sockets would be a hand-over: HandoverTests.)
        let reused = tracker.update(now: 10, observations: [observation(pid: 1, start: 99, inodes: [5])])
        #expect(reused[0].since == 10)
        #expect(reused[0].oldestAge == 0)
    }
}

/// Growth is a fitted slope: one undercounted sample is not a leak (seen in the soak: a pool
/// turning over twice a second while a slow first walk ran read as +15/min).
@Suite struct TrackerGrowthTests {
    @Test func oneLowSampleIsNotALeakButASteadyClimbIsMeasuredExactly() {
        var tracker = Tracker(window: 60)
        var last: ProcessStatus?
        for second in 0...40 {
            let count = second == 0 ? 33 : 40
            last =
                tracker.update(
                    now: Double(second),
                    observations: [observation(inodes: (0..<count).map { UInt64($0 + 1 + second * 1000) })]
                ).first
        }
        let pool = last?.growthPerMinute ?? .nan
        #expect(pool < 5, "a plateau with one low first sample reads \(pool)/min")

        var leak = Tracker(window: 60)
        for second in 0...40 {
            last =
                leak.update(
                    now: Double(second), observations: [observation(inodes: (0..<(10 + second)).map { UInt64($0 + 1) })]
                ).first
        }
        #expect(abs((last?.growthPerMinute ?? 0) - 60) < 0.001)
    }
}

/// Issue 12, item 3: a fast leak shows its rate from the first samples, marked early, while
/// growth alerts still wait for half a window.
@Suite struct EarlyGrowthTests {
    @Test func aFastLeakShowsItsEarlyRateButDoesNotAlertOnIt() {
        var tracker = Tracker(window: 300)
        var status: ProcessStatus?
        for second in stride(from: 0, through: 25, by: 5) {
            status =
                tracker.update(
                    now: Double(second),
                    observations: [observation(inodes: (0..<(10 + second * 20)).map { UInt64($0 + 1) })]
                ).first
        }
        #expect(status?.growthPerMinute == nil)
        #expect(abs((status?.earlyGrowth?.perMinute ?? 0) - 1200) < 0.001)
        #expect(status?.earlyGrowth?.seconds == 25)
        let event = AlertEvent(
            kind: .crossed, reason: .count, level: .critical, process: status!, total: 510, value: 510,
            threshold: 500, rule: "default")
        #expect(AlertMessage.entry(event).message.contains("(+1200/min over 25s, early, oldest 25s)"))
        var policy = AlertPolicy(settings: Settings())
        #expect(!policy.evaluate(now: 25, statuses: [status!], total: 510).contains { $0.reason == .growth })
    }
}

/// Issue 19: what each socket did, per process: arrivals and departures over the window.
@Suite struct FlowTests {
    @Test func arrivalsAndDeparturesAreCountedFromTheSecondSample() {
        var tracker = Tracker(window: 300)
        _ = tracker.update(now: 0, observations: [observation(inodes: [1, 2, 3])])
        _ = tracker.update(now: 5, observations: [observation(inodes: [1, 2, 3, 4, 5])])
        let status = tracker.update(now: 10, observations: [observation(inodes: [2, 3, 4, 5, 6])]).first
        #expect(
            status?.flows
                == ProcessStatus.Flows(arrived: 3, left: 1, ticksWithArrivals: 2, seconds: 10, neverFell: true))
        #expect(status?.flows.robustEarly == false)
    }

    @Test func anEarlyRateIsRobustAfterThirtySecondsOfArrivalsThatStay() {
        var tracker = Tracker(window: 300)
        var status: ProcessStatus?
        for t in stride(from: 0.0, through: 30, by: 5) {
            status =
                tracker.update(
                    now: t, observations: [observation(inodes: (0..<Int(2 + t / 2.5)).map { UInt64($0 + 1) })]
                ).first
        }
        #expect(status?.flows.arrived == 12 && status?.flows.left == 0)
        #expect(status?.flows.robustEarly == true)
        #expect(status?.growthPerMinute == nil)
        #expect(abs((status?.alertableGrowth ?? 0) - 24) < 0.001)
        // One socket closed: not robust any more.
        status = tracker.update(now: 35, observations: [observation(inodes: (1..<15).map { UInt64($0 + 1) })]).first
        #expect(status?.flows.left == 1 && status?.alertableGrowth == nil)
    }

    @Test func exhaustionFollowsTheFdsWhenTheyClimbFasterThanCloseWait() {
        // The kernel resets the leaked sockets (they leave CLOSE_WAIT) but their fds stay open.
        var tracker = Tracker(window: 60)
        var status: ProcessStatus?
        for t in stride(from: 0.0, through: 60, by: 5) {
            status =
                tracker.update(
                    now: t, observations: [observation(inodes: [1, 2, 3, 4, 5], fdOpen: 100 + Int(t), fdLimit: 1000)]
                ).first
        }
        #expect(abs((status?.fdGrowthPerMinute ?? 0) - 60) < 0.001)
        #expect(status?.growthPerMinute == 0)
        // 840 fds of headroom at +60/min: 14 minutes.
        #expect(abs((status?.predictedExhaustion ?? 0) - 840) < 0.001)
    }
}

/// Issue 19: sockets reset by the kernel while still held count with the leak.
@Suite struct ResetButHeldTests {
    @Test func theTrackerSaysWhichSocketsLeft() {
        var tracker = Tracker(window: 300)
        _ = tracker.update(now: 0, observations: [observation(inodes: [1, 2, 3])])
        #expect(tracker.departed.isEmpty)
        _ = tracker.update(now: 5, observations: [observation(inodes: [2, 4])])
        #expect(tracker.departed.values.first == [1, 3])
    }

    @Test func heldResetSocketsCountForTheCountAlertAndAreNotClosed() {
        var status = AlertPolicyTests.status(60)
        status.heldAfterReset = 50
        #expect(status.leakedSockets == 110)
        var policy = AlertPolicy(
            settings: AlertPolicyTests.settings {
                $0.thresholds.countWarning = 100; $0.thresholds.countCritical = 1000
            })
        _ = policy.evaluate(now: 0, statuses: [status], total: 60)
        let events = policy.evaluate(now: 5, statuses: [status], total: 60)
        #expect(events.contains { $0.reason == .count && $0.kind == .crossed && $0.value == 110 })
        var flows = ProcessStatus.Flows(arrived: 40, left: 30, ticksWithArrivals: 8, seconds: 60)
        #expect(!flows.nothingLeaves)
        flows.resetButHeld = 30
        #expect(flows.nothingLeaves)
    }

    @Test func theFdsClimbIsTheGrowthWhenResetSocketsAreHeld() {
        var status = AlertPolicyTests.status(10, growth: 0)
        status.fdGrowthPerMinute = 60
        #expect(status.alertableGrowth == 0)
        status.heldAfterReset = 40
        #expect(status.alertableGrowth == 60)
    }
}
