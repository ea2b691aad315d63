/// ProcPidCgroup finds the systemd unit of a process in /proc/<pid>/cgroup. Cgroup paths are
/// named by whoever may create cgroups (delegated users, container managers), so they are
/// parsed as bytes and the unit is untrusted text.
public enum ProcPidCgroup {
    /// The deepest `*.service` or `*.scope` component of the unified hierarchy path (`0::/…`),
    /// or of the v1 `name=systemd` hierarchy; nil when there is none (kernel threads, processes
    /// outside systemd, most containers). A unit inside a delegated subtree (a user manager's,
    /// a container's: see `CgroupDelegation`) is named with the boundary in front,
    /// `user@1000.service: legacy-proxy.service`, so it never reads as a system unit.
    public static func unit(_ bytes: some Collection<UInt8>) -> ByteString? {
        var v1: ByteString?
        for line in Array(bytes).asciiLines {
            let parts = line.split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0].elementsEqual("0".utf8) && parts[1].isEmpty {
                return deepestUnit(parts[2])
            }
            if parts[1].elementsEqual("name=systemd".utf8) { v1 = deepestUnit(parts[2]) }
        }
        return v1
    }

    public static func unit(_ text: String) -> ByteString? { unit(Array(text.utf8)) }

    static func deepestUnit(_ path: ArraySlice<UInt8>) -> ByteString? {
        let components = path.split(separator: UInt8(ascii: "/")).map { Array($0) }
        func isUnit(_ c: [UInt8]) -> Bool {
            c.reversed().starts(with: "ecivres.".utf8) || c.reversed().starts(with: "epocs.".utf8)
        }
        guard let boundary = CgroupDelegation.boundary(components) else {
            return components.last(where: isUnit).map { ByteString($0) }
        }
        if let inner = components[(boundary + 1)...].last(where: isUnit) {
            return ByteString(components[boundary]) + ": " + ByteString(inner)
        }
        return components[...boundary].last(where: isUnit).map { ByteString($0) }
    }
}
