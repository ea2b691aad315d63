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

    public init() {}

    public static func + (a: ScanStatistics, b: ScanStatistics) -> ScanStatistics {
        var sum = ScanStatistics()
        sum.processesScanned = a.processesScanned + b.processesScanned
        sum.fdsRead = a.fdsRead + b.fdsRead
        sum.vanished = a.vanished + b.vanished
        sum.permissionDenied = a.permissionDenied + b.permissionDenied
        sum.otherErrors = a.otherErrors + b.otherErrors
        sum.notYetSearched = a.notYetSearched + b.notYetSearched
        return sum
    }
}
