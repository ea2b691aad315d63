/// NamespaceCoverage is what one tick could and could not read of the network namespaces
/// other than the daemon's own: every one is read, reused (counters unchanged), stale (the
/// tick's budget ran out; its last table stands in), unread (over budget and never read yet),
/// cut (its table was larger than the byte limit or outlasted the budget: what was read is
/// kept), or failed (why). Said in STATUS, the journal, the state file and the metrics.
public struct NamespaceCoverage: Equatable, Sendable {
    /// Foreign namespaces with a member this tick.
    public var namespaces = 0
    public var read = 0
    public var unchanged = 0
    public var stale = 0
    public var unread = 0
    /// Namespace inode -> why its table was not read to the end.
    public var cut: [UInt64: String] = [:]
    /// Namespace inode -> the error.
    public var failed: [UInt64: String] = [:]
    /// Named namespaces (`/run/netns/NAME (net:[INODE])`) with no process in them.
    public var memberless: [String] = []
    /// Namespaces no task is in any more, kept alive by sockets: inode -> the CLOSE_WAIT
    /// sockets of their last read still held by a process (newer ones cannot be seen).
    public var orphaned: [UInt64: Int] = [:]

    public init() {}

    /// Namespaces whose sockets this tick may be missing or old.
    public var incomplete: Int { stale + unread + cut.count + failed.count + orphaned.count }

    /// `3 of 1000 network namespaces not read this tick (budget), 1 cut, 1 failed`, or nil
    /// when every namespace was seen.
    public var summary: String? {
        var parts = [String]()
        if unread > 0 { parts.append("\(unread) never read yet") }
        if stale > 0 { parts.append("\(stale) from an earlier tick") }
        if !cut.isEmpty { parts.append("\(cut.count) cut short") }
        if !failed.isEmpty { parts.append("\(failed.count) unreadable") }
        if !orphaned.isEmpty { parts.append("\(orphaned.count) with no task left") }
        guard !parts.isEmpty else { return nil }
        return "network namespaces \(namespaces): " + parts.joined(separator: ", ")
    }

    /// What changed enough to be said in the journal: which namespaces are cut or failed,
    /// and whether any are behind (stale or unread) — not the counts, which move each tick.
    public struct Problems: Equatable, Sendable {
        public var cut: [UInt64: String]
        public var failed: [UInt64: String]
        public var behind: Bool
        public var orphaned: Set<UInt64> = []
    }

    public var problems: Problems {
        Problems(cut: cut, failed: failed, behind: stale + unread > 0, orphaned: Set(orphaned.keys))
    }
}

/// NamespaceReporter turns each tick's coverage into journal entries on changes only: which
/// namespaces are cut or unreadable, and whether the budget left some behind. A change is
/// said once it has lasted `hold` ticks, so a host near its budget does not flap. Pure.
public struct NamespaceReporter: Sendable {
    private var reported = NamespaceCoverage.Problems(cut: [:], failed: [:], behind: false)
    private var pending: (problems: NamespaceCoverage.Problems, ticks: Int)?
    public var hold = 2
    /// At most this many namespaces are named in one entry.
    static let named = 10

    public init() {}

    public mutating func update(_ coverage: NamespaceCoverage, budget: Double) -> JournalEntry? {
        let now = coverage.problems
        guard now != reported else {
            pending = nil
            return nil
        }
        let ticks = pending?.problems == now ? pending!.ticks + 1 : 1
        pending = (now, ticks)
        guard ticks >= hold else { return nil }
        pending = nil
        reported = now
        var problems = [String]()
        for (ns, why) in now.cut.sorted(by: { $0.key < $1.key }).prefix(Self.named) {
            problems.append("net:[\(ns)] cut: \(why)")
        }
        for (ns, why) in now.failed.sorted(by: { $0.key < $1.key }).prefix(Self.named) {
            problems.append("net:[\(ns)] unreadable: \(why)")
        }
        for ns in now.orphaned.sorted().prefix(Self.named) {
            problems.append(
                "net:[\(ns)] has no task left (its sockets keep it alive): \(coverage.orphaned[ns] ?? 0) CLOSE_WAIT sockets from its last read, still held; newer ones cannot be seen"
            )
        }
        let more = now.cut.count + now.failed.count + now.orphaned.count - problems.count
        if more > 0 { problems.append("and \(more) more") }
        if now.behind {
            problems.append(
                "\(coverage.stale) of \(coverage.namespaces) from an earlier tick, \(coverage.unread) never read yet "
                    + "(the \(TimeSpan.format(budget)) budget per tick ran out; the rest are read first next tick)")
        }
        guard !problems.isEmpty else {
            return JournalEntry(
                message: "Every network namespace's TCP table is read in full again.", priority: .notice,
                messageID: MessageID.namespacesComplete, fields: [])
        }
        let netns = (Array(now.cut.keys) + Array(now.failed.keys) + Array(now.orphaned)).sorted().prefix(Self.named)
            .map(String.init).joined(separator: " ")
        let text = problems.joined(separator: "; ")
        return JournalEntry(
            message:
                "Not every network namespace was read in full: \(text). Their CLOSE_WAIT sockets may be missing or old.",
            priority: .warning, messageID: MessageID.namespacesIncomplete,
            fields: [
                ("CLOSEWAIT_PROBLEM", ByteString(text)), ("CLOSEWAIT_NETNS", ByteString(netns)),
                ("CLOSEWAIT_NAMESPACES", ByteString(String(coverage.namespaces))),
            ])
    }
}
