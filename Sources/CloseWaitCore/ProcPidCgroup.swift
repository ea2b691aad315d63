/// ProcPidCgroup finds the systemd unit of a process in /proc/<pid>/cgroup.
public enum ProcPidCgroup {
    /// The deepest `*.service` or `*.scope` component of the unified hierarchy path (`0::/…`),
    /// or of the v1 `name=systemd` hierarchy; nil when there is none (kernel threads, processes
    /// outside systemd, most containers).
    public static func unit(_ text: String) -> String? {
        var v1: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                return deepestUnit(parts[2])
            }
            if parts[1] == "name=systemd" { v1 = deepestUnit(parts[2]) }
        }
        return v1
    }

    static func deepestUnit(_ path: Substring) -> String? {
        path.split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }).map(String.init)
    }
}
