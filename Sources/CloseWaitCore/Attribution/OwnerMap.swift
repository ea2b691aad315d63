/// OwnerMap is socket inode -> the pids holding it, stored for the common case: one owner per
/// socket in a flat dictionary, the rare further owners (fork, fd passing) beside it, so tens
/// of thousands of sockets cost no array each.
public struct OwnerMap: Sendable, Equatable {
    private var first: [UInt64: Int32] = [:]
    private var more: [UInt64: [Int32]] = [:]

    public init(minimumCapacity: Int = 0) {
        first.reserveCapacity(minimumCapacity)
    }

    public init(_ owners: [UInt64: [Int32]]) {
        for (inode, pids) in owners { for pid in pids { add(pid, for: inode) } }
    }

    public mutating func add(_ pid: Int32, for inode: UInt64) {
        if let existing = first[inode] {
            // A pid's links are added together, so a repeat (two fds to one socket) is always
            // the last owner added: no search (10,000 forked sharers made `contains` quadratic).
            if existing != pid, more[inode]?.last != pid { more[inode, default: []].append(pid) }
        } else {
            first[inode] = pid
        }
    }

    public var count: Int { first.count }

    /// Whether `inode` has an owner.
    public func contains(_ inode: UInt64) -> Bool { first[inode] != nil }
    public var isEmpty: Bool { first.isEmpty }

    /// Calls `body` with each owner of `inode`, without allocating.
    @inline(__always)
    public func forEachOwner(of inode: UInt64, _ body: (Int32) -> Void) {
        guard let pid = first[inode] else { return }
        body(pid)
        if let rest = more[inode] { rest.forEach(body) }
    }

    /// The owners of `inode`, ascending; empty when none.
    public subscript(inode: UInt64) -> [Int32] {
        guard let pid = first[inode] else { return [] }
        return ([pid] + (more[inode] ?? [])).sorted()
    }
}
