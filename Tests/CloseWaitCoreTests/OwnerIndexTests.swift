@testable import CloseWaitCore
import Testing

/// The owner index's decisions with processes as values (FakeFdTables): what it reads, in
/// what order, what it keeps and what it drops.
@Suite struct OwnerIndexTests {
    /// A host of processes as values, recording what the index asked.
    final class FakeFdTables: FdTableSource {
        struct Process {
            var start: UInt64
            var comm: String
            var uid: UInt32 = 1000
            /// fd -> socket inode.
            var sockets: [Int32: UInt64] = [:]
            var otherFds = 10
            var unreadable = false
        }
        var processes: [Int32: Process] = [:]
        var listFails = false
        var scanned: [Int32] = []
        var counted: [Int32] = []
        var startTimesRead: [Int32] = []
        var detailsRead: [Int32] = []

        func listProcesses() throws -> [Int32] {
            if listFails { throw FdTableError.other("opendir /proc: Permission denied") }
            return processes.keys.sorted()
        }

        func read(_ pid: Int32) -> Result<Process, FdTableError> {
            guard let p = processes[pid] else { return .failure(.vanished) }
            return p.unreadable ? .failure(.permissionDenied) : .success(p)
        }

        func scan(_ requests: [FdScanRequest]) -> [Result<FdTable, FdTableError>] {
            requests.map { request in
                scanned.append(request.pid)
                return read(request.pid).map { p in
                    let links = p.sockets.filter {
                        !request.skip.contains($0.key) && (request.wanted?.contains($0.value) ?? true)
                    }
                    .map { FdLinkEntry(fd: $0.key, inode: $0.value) }.sorted { $0.fd < $1.fd }
                    return FdTable(fdCount: p.sockets.count + p.otherFds, links: links)
                }
            }
        }

        /// false: like a kernel before 6.2, fd counts are not cheap.
        var countsAreCheap = true

        func fdCounts(_ pids: [Int32]) -> [Result<Int?, FdTableError>] {
            pids.map { pid in
                counted.append(pid)
                return read(pid).map { countsAreCheap ? $0.sockets.count + $0.otherFds : nil }
            }
        }

        func startTime(of pid: Int32) -> Result<UInt64, FdTableError> {
            startTimesRead.append(pid)
            return processes[pid].map { .success($0.start) } ?? .failure(.vanished)
        }

        func details(of pid: Int32, fdOpen: Int) -> Result<ProcessDetails, FdTableError> {
            detailsRead.append(pid)
            guard let p = processes[pid] else { return .failure(.vanished) }
            return .success(
                ProcessDetails(
                    identity: ProcessIdentity(pid: pid, startTime: p.start), comm: ByteString(p.comm),
                    uid: p.uid, fdOpen: fdOpen))
        }

        func uid(of pid: Int32) -> UInt32? { processes[pid]?.uid }

        func resetLog() { scanned = []; counted = []; startTimesRead = []; detailsRead = [] }

        /// The CLOSE_WAIT records for every socket any process holds, plus `extra` inodes.
        func records(extra: [UInt64] = [], uid: UInt32 = 1000) -> [SocketRecord] {
            let inodes = Set(processes.values.flatMap { $0.sockets.values }).union(extra)
            return inodes.sorted().map { inode in
                SocketRecord(
                    family: .inet, state: .closeWait, local: Endpoint(address: .v4(127, 0, 0, 1), port: 40000),
                    remote: Endpoint(address: .v4(127, 0, 0, 1), port: 8080), inode: inode, uid: uid, recvQ: 0, sendQ: 0
                )
            }
        }
    }

    func host() -> FakeFdTables {
        let host = FakeFdTables()
        host.processes[100] = .init(start: 1000, comm: "java", sockets: [5: 501, 6: 502])
        host.processes[200] = .init(start: 2000, comm: "nginx", sockets: [7: 601])
        host.processes[300] = .init(start: 3000, comm: "idle")
        return host
    }

    @Test func fullWalkThenPlateauReadsNoLinks() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        let first = try index.attribute(records: host.records(), now: 0)
        #expect(index.lastReport.kind == .full)
        #expect(Set(host.scanned) == [100, 200, 300])
        #expect(first.owners[501] == [100] && first.owners[601] == [200])
        #expect(first.details[100]?.comm == "java" && first.details[100]?.fdOpen == 12)

        host.resetLog()
        let second = try index.attribute(records: host.records(), now: 5)
        #expect(index.lastReport.kind == .incremental)
        #expect(index.lastReport.linksKept == 3)
        #expect(host.scanned.isEmpty, "a plateau tick scans no fd table")
        #expect(Set(host.counted) == [100, 200], "only the holders' fd counts")
        #expect(Set(host.startTimesRead) == [100, 200], "each holder's start time: one small read")
        #expect(host.detailsRead.isEmpty)
        #expect(second.owners[502] == [100])

        // The full walk comes back on schedule.
        _ = try index.attribute(records: host.records(), now: 61)
        #expect(index.lastReport.kind == .full)
    }

    @Test func aNewLeakerIsSearchedFirstAndTheSearchStopsWhenFound() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[400] = .init(start: 4000, comm: "leaker", sockets: [3: 701, 4: 702])
        host.resetLog()
        let next = try index.attribute(records: host.records(), now: 5)
        #expect(index.lastReport.newInodes == 2)
        #expect(index.lastReport.searched == [400], "processes started since are searched first, and nobody else")
        #expect(next.owners[701] == [400] && next.details[400]?.comm == "leaker")
    }

    @Test func aHolderGainingSocketsIsFoundAmongHoldersWithKnownFdsSkipped() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[200]!.sockets[8] = 602
        host.resetLog()
        let next = try index.attribute(records: host.records(), now: 5)
        #expect(index.lastReport.searched.first == 100 || index.lastReport.searched.first == 200)
        #expect(!index.lastReport.searched.contains(300), "holders are searched before the rest")
        #expect(next.owners[602] == [200])
        #expect(next.owners[601] == [200])
    }

    /// A reused pid: the holder exits and a new process gets its pid before the next tick.
    @Test func aReusedPidIsANewProcess() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[100] = .init(start: 1500, comm: "bravo", sockets: [5: 801, 9: 802])
        host.resetLog()
        let next = try index.attribute(records: host.records(), now: 5)
        #expect(next.details[100]?.comm == "bravo")
        #expect(next.details[100]?.identity == ProcessIdentity(pid: 100, startTime: 1500))
        #expect(
            host.startTimesRead == [200, 100], "every cached holder's (200) each tick, then the one found by search")
        #expect(next.owners[801] == [100] && next.owners[501].isEmpty)
    }

    /// The same process gaining sockets keeps its cached details (one stat read, no re-read).
    @Test func aSearchedHolderWithTheSameStartTimeKeepsItsDetails() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[100]!.sockets = [9: 901]  // closed the old ones, opened a new one
        host.resetLog()
        let next = try index.attribute(records: host.records(), now: 5)
        #expect(next.owners[901] == [100])
        #expect(host.startTimesRead == [200, 100])
        #expect(host.detailsRead.isEmpty)
    }

    /// Issue 17, row 12: the holder forks a child that keeps the sockets, exits, and its pid
    /// is reused at once. The cached holder's start time, checked every tick, catches it: the
    /// newcomer is never named as the holder, and the child is found by the search.
    @Test func aHolderWhosePidWasReusedLosesItsSocketsToTheRealHolderAtOnce() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[150] = .init(start: 1100, comm: "java-child", sockets: [5: 501, 6: 502])  // forked, holds both
        host.processes[100] = .init(start: 9000, comm: "sleep")  // the parent exited; pid 100 reused
        let next = try index.attribute(records: host.records(), now: 5)
        #expect(index.lastReport.reusedPids == 1)
        #expect(next.owners[501] == [150] && next.owners[502] == [150])
        #expect(next.details[100] == nil, "the newcomer holds nothing and is not shown")
        #expect(next.details[150]?.comm == "java-child")
    }

    /// Issue 17, row 10: a user with many idle fds and an unownable socket a tick cannot turn
    /// every tick into a full walk: each tick's search reads at most `searchBudget` fds, goes
    /// on where it stopped, and what still waits is counted.
    @Test func theSearchForNewOwnersIsBudgetedAndGoesOnNextTick() throws {
        let host = host()
        for pid in Int32(1000)..<1040 { host.processes[pid] = .init(start: UInt64(pid), comm: "idle", otherFds: 5000) }
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        index.searchBudget = 20_000  // four idle processes a tick
        _ = try index.attribute(records: host.records(), now: 0)
        var extra: [UInt64] = [999]  // an unownable socket (in flight in a unix socket's queue)
        var ticks = 0
        var fdsPerTick = [Int]()
        var pending = [Int]()
        repeat {
            ticks += 1
            let next = try index.attribute(records: host.records(extra: extra), now: Double(ticks) * 5)
            fdsPerTick.append(next.statistics.fdsRead)
            pending.append(next.statistics.notYetSearched)
        } while pending.last != 0 && ticks < 30
        #expect(fdsPerTick.allSatisfy { $0 <= 20_000 + 5_100 }, "\(fdsPerTick)")  // a batch may finish past the budget
        #expect(ticks >= 8 && ticks < 30, "a lap over 43 processes at ~4 a tick: \(ticks) ticks")
        #expect(pending.dropLast().allSatisfy { $0 == 1 }, "said while it waits: \(pending)")
        // Searched everywhere: not searched again until the next full walk.
        host.resetLog()
        _ = try index.attribute(records: host.records(extra: extra), now: 200)
        #expect(host.scanned.isEmpty)
        // A new socket that someone does hold is still found at once (new pids, holders first).
        host.processes[2000] = .init(start: 2000, comm: "leaker", sockets: [3: 4242])
        extra.append(4242)
        let found = try index.attribute(records: host.records(extra: extra), now: 205)
        #expect(found.owners[4242] == [2000])
    }

    /// A long full walk reports its progress chunk by chunk (the daemon feeds the watchdog
    /// from it), and a search batch by batch.
    @Test func aLongWalkReportsProgress() throws {
        let host = host()
        for pid in Int32(1000)..<3000 { host.processes[pid] = .init(start: UInt64(pid), comm: "idle") }
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        var calls = 0
        index.progress = { calls += 1 }
        _ = try index.attribute(records: host.records(), now: 0)
        #expect(calls == 4, "2003 processes in chunks of 512")
        calls = 0
        host.processes[5000] = .init(start: 5000, comm: "leaker", sockets: [3: 4242])
        _ = try index.attribute(records: host.records(), now: 5)
        #expect(calls >= 1)
    }

    @Test func forkSharedAndPassedSocketsAppearAtTheNextFullWalk() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        // A parent and its forked child both hold 501 from the start: both found.
        host.processes[101] = .init(start: 1001, comm: "java-child", sockets: [5: 501])
        let first = try index.attribute(records: host.records(), now: 0)
        #expect(first.owners[501] == [100, 101])
        // 601 is passed to 300 (SCM_RIGHTS) and nginx closes it: still attributed to 200
        // until the full walk (the socket never left CLOSE_WAIT), then to 300.
        host.processes[300]!.sockets[12] = 601
        host.processes[200]!.sockets = [:]
        let between = try index.attribute(records: host.records(), now: 5)
        #expect(between.owners[601] == [200])
        let walked = try index.attribute(records: host.records(), now: 61)
        #expect(walked.owners[601] == [300])
    }

    @Test func aHolderExitingMidTickIsVanishedAndItsSharedSocketsFollowTheSurvivor() throws {
        let host = host()
        host.processes[101] = .init(start: 1001, comm: "java-child", sockets: [5: 501])
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        _ = try index.attribute(records: host.records(), now: 0)
        host.processes[100] = nil  // exits; 501 stays in CLOSE_WAIT through the child
        let next = try index.attribute(records: host.records(extra: []), now: 5)
        #expect(next.statistics.vanished == 1)
        #expect(next.statistics.permissionDenied == 0)
        #expect(next.owners[501] == [101])
        #expect(next.details[100] == nil)
    }

    @Test func churnReplacesHoldersTickAfterTick() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 3600)
        _ = try index.attribute(records: host.records(), now: 0)
        for round in 0..<5 {
            let old = Int32(1000 + round), new = Int32(1001 + round)
            host.processes[old] = nil
            host.processes[new] = .init(start: UInt64(new), comm: "worker", sockets: [3: UInt64(9000 + round)])
            let result = try index.attribute(records: host.records(), now: Double(round + 1))
            #expect(result.owners[UInt64(9000 + round)] == [new])
            #expect(result.details[old] == nil)
        }
    }

    @Test func unreadableProcessesKeepAttributionDegradedUntilTheNextWalk() throws {
        let host = host()
        host.processes[500] = .init(start: 5000, comm: "secret", sockets: [3: 999], unreadable: true)
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        let first = try index.attribute(records: host.records(), now: 0)
        #expect(first.statistics.permissionDenied == 1)
        #expect(first.owners[999].isEmpty)
        host.resetLog()
        let plateau = try index.attribute(records: host.records(), now: 5)
        #expect(plateau.statistics.permissionDenied == 1, "still unknown owner, still degraded")
        #expect(host.scanned.isEmpty, "not searched again before the next full walk")
        let snapshot = Snapshot.join(
            records: host.records(), owners: plateau.owners, details: plateau.details,
            statistics: plateau.statistics, source: .netlink, states: [.closeWait], keepSockets: false)
        #expect(AttributionHealth(snapshot).degraded)
    }

    @Test func anUnlistableProcFailsTheTick() {
        let host = host()
        host.listFails = true
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        #expect(throws: FdTableError.self) { try index.attribute(records: host.records(extra: [1]), now: 0) }
    }

    @Test func anEmptySampleForgetsEverythingAndReadsNothing() throws {
        let host = host()
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        _ = try index.attribute(records: host.records(), now: 0)
        host.resetLog()
        let idle = try index.attribute(records: [], now: 5)
        #expect(index.lastReport.kind == .idle)
        #expect(idle.owners.isEmpty && host.scanned.isEmpty && host.counted.isEmpty)
    }
}

/// Before Linux 6.2 an fd count costs a walk of the fd table: between full walks the index
/// moves the last exact count with the sampled sockets.
@Suite struct OwnerIndexFdCountTests {
    @Test func withoutCheapCountsTheLeakStillMovesTheFdCount() throws {
        let host = OwnerIndexTests.FakeFdTables()
        host.countsAreCheap = false
        host.processes[100] = .init(start: 1, comm: "java", sockets: [5: 501, 6: 502], otherFds: 40)
        let index = OwnerIndex(source: host, fullScanInterval: 60)
        let first = try index.attribute(records: host.records(), now: 0)
        #expect(first.details[100]?.fdOpen == 42)  // exact: the full walk counted
        host.processes[100]!.sockets[7] = 503
        host.processes[100]!.sockets[8] = 504
        let grown = try index.attribute(records: host.records(), now: 5)
        #expect(grown.details[100]?.fdOpen == 44)  // exact again: the search counted it
        host.processes[100]!.sockets[5] = nil  // closed one
        host.processes[100]!.otherFds = 60  // and opened 20 files: not seen until the walk
        let plateau = try index.attribute(records: host.records(), now: 10)
        #expect(plateau.details[100]?.fdOpen == 43)
        let walked = try index.attribute(records: host.records(), now: 61)
        #expect(walked.details[100]?.fdOpen == 63)
    }
}
