import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

/// The daemon's incremental owner search against real sockets: a full walk first, then
/// verified links and a search limited to new inodes.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct OwnerIndexLiveTests {
    static func owners(_ index: OwnerIndex, now: Double, ports: Set<Int>) throws -> [UInt64: Set<Int32>] {
        var sampler = KernelSampler(choice: .netlink)
        // Only this test's sockets: other suites make CLOSE_WAIT sockets at the same time.
        let records = try sampler.sample(states: [.closeWait]).records.filter { ports.contains(Int($0.remote.port)) }
        let found = try index.attribute(records: records, now: now)
        var result = [UInt64: Set<Int32>]()
        for r in records where ports.contains(Int(r.remote.port)) {
            result[r.inode] = Set(found.owners[r.inode] ?? [])
        }
        return result
    }

    static func expected(_ workloads: [Workload]) throws -> [UInt64: Set<Int32>] {
        var result = [UInt64: Set<Int32>]()
        for w in workloads { for s in try w.manifest() { result[s.inode, default: []].insert(s.pid) } }
        return result
    }

    @Test func incrementalTicksVerifyKnownLinksAndFindNewSockets() throws {
        let a = try Workload(["--processes", "2", "--v4", "3", "--shared", "1", "--filler", "50"])
        defer { a.stop() }
        let index = OwnerIndex(source: ProcFdTableSource(), fullScanInterval: 3600)
        let first = try Self.owners(index, now: 0, ports: [a.port4])
        #expect(index.lastReport.kind == .full)
        #expect(first == (try Self.expected([a])))

        // Plateau: nothing new; the known links are kept, no process is searched.
        let second = try Self.owners(index, now: 1, ports: [a.port4])
        #expect(index.lastReport.kind == .incremental)
        #expect(index.lastReport.processesSearched == 0)
        #expect(index.lastReport.linksKept == 9)  // 3 + 3 + the sharer's 3
        #expect(second == first)

        // A new leaker appears: found by a search that stops once every new inode has an owner.
        let b = try Workload(["--processes", "1", "--v4", "4"])
        defer { b.stop() }
        let third = try Self.owners(index, now: 2, ports: [a.port4, b.port4])
        #expect(index.lastReport.kind == .incremental)
        #expect(index.lastReport.newInodes == 4)
        #expect(third == (try Self.expected([a, b])))

        // The leaker exits: its sockets leave CLOSE_WAIT and it is gone.
        b.stop()
        let fourth = try Self.owners(index, now: 3, ports: [a.port4, b.port4])
        #expect(fourth == first)

        // The full walk comes back on schedule.
        _ = try Self.owners(index, now: 3700, ports: [a.port4])
        #expect(index.lastReport.kind == .full)
    }

    @Test func idleTickReadsNothing() throws {
        let index = OwnerIndex(source: ProcFdTableSource(), fullScanInterval: 60)
        let result = try index.attribute(records: [], now: 0)
        #expect(result.owners.isEmpty)
        #expect(result.statistics.processesScanned == 0)
        #expect(index.lastReport.kind == .idle)
    }
}
