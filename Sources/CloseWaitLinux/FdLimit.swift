import Glibc

/// FdLimit makes sure the daemon has the few descriptors a tick needs (the netlink socket, a
/// /proc directory and file, the state file, the notify and journal sockets, Dispatch's own).
public enum FdLimit {
    /// Below this soft RLIMIT_NOFILE a tick can fail for want of a descriptor.
    public static let needed: rlim_t = 64

    /// Raises the soft limit toward the hard one when it is below `needed` (no privilege
    /// needed); returns why the daemon cannot run if even the hard limit is too low.
    public static func ensureHeadroom() -> String? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        guard limit.rlim_cur < needed else { return nil }
        let wanted = min(limit.rlim_max, 1024)
        if wanted > limit.rlim_cur {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        guard limit.rlim_cur >= needed else {
            return
                "the open-file limit is \(limit.rlim_cur) (hard \(limit.rlim_max)); closewaitd needs at least \(needed) descriptors to sample. Raise it (LimitNOFILE= in the unit, ulimit -n)."
        }
        return nil
    }
}
