/// ScanStatistics counts what the /proc walk could not read. None of it is an error: processes
/// exit between listing and reading, and an unprivileged caller cannot read others' fds.
public struct ScanStatistics: Equatable, Sendable {
    public var processesScanned = 0
    public var fdsRead = 0
    /// Processes that exited mid-scan (ENOENT/ESRCH).
    public var vanished = 0
    /// Processes whose fd table we may not read (EACCES/EPERM).
    public var permissionDenied = 0
    /// Other per-process read errors (e.g. a malformed /proc file), counted.
    public var otherErrors = 0
    /// Sampled sockets with no owner found yet whose search is not finished: the tick's
    /// search budget ran out (`OwnerIndex.searchBudget`); it goes on next tick.
    public var notYetSearched = 0
    /// The uids of the processes whose fd tables could not be read (`UInt32.max`: unknown).
    public var unreadableUIDs = Set<UInt32>()

    public init() {}

    /// Whether an unowned socket created by `uid` may belong to a process we could not read:
    /// only if some unreadable process runs as that uid (a socket's uid is its creator's), so
    /// one unreadable process of another user does not hide every unowned socket.
    public func mayHide(uid: UInt32) -> Bool {
        permissionDenied > 0
            && (unreadableUIDs.isEmpty || unreadableUIDs.contains(uid) || unreadableUIDs.contains(.max))
    }

    public static func + (a: ScanStatistics, b: ScanStatistics) -> ScanStatistics {
        var sum = ScanStatistics()
        sum.processesScanned = a.processesScanned + b.processesScanned
        sum.fdsRead = a.fdsRead + b.fdsRead
        sum.vanished = a.vanished + b.vanished
        sum.permissionDenied = a.permissionDenied + b.permissionDenied
        sum.otherErrors = a.otherErrors + b.otherErrors
        sum.notYetSearched = a.notYetSearched + b.notYetSearched
        sum.unreadableUIDs = a.unreadableUIDs.union(b.unreadableUIDs)
        return sum
    }
}
