@testable import CloseWaitCore
import Testing

/// What a tick could not read of other namespaces is said, on changes only (issue 17 rows
/// 3-4; issue 18: a namespace read error is never a silent drop).
@Suite struct NamespaceCoverageTests {
    static func coverage(stale: Int = 0, unread: Int = 0, cut: [UInt64: String] = [:], failed: [UInt64: String] = [:])
        -> NamespaceCoverage
    {
        var c = NamespaceCoverage()
        c.namespaces = 10
        c.read = 10 - stale - unread - cut.count - failed.count
        c.stale = stale
        c.unread = unread
        c.cut = cut
        c.failed = failed
        return c
    }

    @Test func everyProblemIsSaidOnceAndTheRecoveryToo() throws {
        var reporter = NamespaceReporter()
        reporter.hold = 1
        #expect(reporter.update(Self.coverage(), budget: 2) == nil)
        let failedEntry = reporter.update(Self.coverage(failed: [4026532567: "EACCES"]), budget: 2)
        let failed = try #require(failedEntry)
        #expect(failed.priority == .warning)
        #expect(failed.messageID == MessageID.namespacesIncomplete)
        #expect(failed.message.contains("net:[4026532567] unreadable: EACCES"))
        #expect(failed.field("CLOSEWAIT_NETNS") == "4026532567")
        #expect(reporter.update(Self.coverage(failed: [4026532567: "EACCES"]), budget: 2) == nil, "said once")
        let behindEntry = reporter.update(Self.coverage(stale: 7, unread: 1, failed: [4026532567: "EACCES"]), budget: 2)
        let behind = try #require(behindEntry)
        #expect(
            behind.message.contains("7 of 10 from an earlier tick, 1 never read yet (the 2s budget per tick ran out"))
        // The counts move each tick; only a change of kind is said.
        #expect(reporter.update(Self.coverage(stale: 5, failed: [4026532567: "EACCES"]), budget: 2) == nil)
        let okEntry = reporter.update(Self.coverage(), budget: 2)
        let ok = try #require(okEntry)
        #expect(ok.messageID == MessageID.namespacesComplete && ok.priority == .notice)
    }

    @Test func manyNamespacesAreNamedUpToTen() throws {
        var reporter = NamespaceReporter()
        reporter.hold = 1
        var cut = [UInt64: String]()
        for ns in 1...25 { cut[UInt64(ns)] = "net/tcp larger than the 32 MiB read per tick" }
        let entryEntry = reporter.update(Self.coverage(cut: cut), budget: 2)
        let entry = try #require(entryEntry)
        #expect(entry.message.contains("and 15 more"))
        #expect(entry.field("CLOSEWAIT_NETNS")?.split(separator: " ").count == 10)
    }

    @Test func statusAndMetricsSayIt() {
        let c = Self.coverage(stale: 3, cut: [9: "x"])
        #expect(c.summary == "network namespaces 10: 3 from an earlier tick, 1 cut short")
        #expect(Self.coverage().summary == nil)
        let line = StatusLine.render(statuses: [], alerting: 0, total: 0, notes: [c.summary!])
        #expect(line == "No CLOSE_WAIT sockets seen; network namespaces 10: 3 from an earlier tick, 1 cut short")
        var health = Metrics.Health()
        health.namespaces = c
        let page = Metrics.render(statuses: [], firing: [], total: 0, health: health, version: "t")
        #expect(page.contains("closewaitd_network_namespaces{state=\"stale\"} 3\n"))
        #expect(page.contains("closewaitd_network_namespaces{state=\"cut\"} 1\n"))
        #expect(page.contains("closewaitd_network_namespaces{state=\"read\"} 6\n"))
    }

    @Test func aNamespaceWithNoTaskLeftIsSaid() throws {
        var reporter = NamespaceReporter()
        reporter.hold = 1
        var c = Self.coverage()
        c.orphaned = [4026532999: 300]
        let said = reporter.update(c, budget: 1)
        let entry = try #require(said)
        #expect(
            entry.message.contains(
                "net:[4026532999] has no task left (its sockets keep it alive): 300 CLOSE_WAIT sockets from its last read"
            ))
        #expect(c.summary == "network namespaces 10: 1 with no task left")
        var health = Metrics.Health()
        health.namespaces = c
        #expect(
            Metrics.render(statuses: [], firing: [], total: 0, health: health, version: "t").contains(
                "closewaitd_network_namespaces{state=\"orphaned\"} 1\n"))
    }

    /// A change is said once it has lasted two ticks: a host at the edge of its budget does
    /// not flap between "behind" and "complete" every tick.
    @Test func aChangeMustLastBeforeItIsSaid() {
        var reporter = NamespaceReporter()
        #expect(reporter.update(Self.coverage(stale: 2), budget: 1) == nil)
        #expect(reporter.update(Self.coverage(), budget: 1) == nil)
        #expect(reporter.update(Self.coverage(stale: 2), budget: 1) == nil)
        #expect(reporter.update(Self.coverage(stale: 3), budget: 1)?.messageID == MessageID.namespacesIncomplete)
        #expect(reporter.update(Self.coverage(), budget: 1) == nil)
        #expect(reporter.update(Self.coverage(), budget: 1)?.messageID == MessageID.namespacesComplete)
    }
}
