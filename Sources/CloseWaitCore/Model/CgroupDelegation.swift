/// CgroupDelegation says where the system's own part of a cgroup path ends. Above that point
/// only root (systemd, a container runtime) names cgroups; below it someone else does: the user
/// whose manager (`user@1000.service`) was delegated the subtree, or the container whose
/// cgroup it is (its own systemd, or anything run inside with a delegated cgroup). A unit or
/// container name found below the boundary is that party's, never the system's: it is shown
/// and matched with the boundary in front (`user@1000.service: legacy-proxy.service`).
public enum CgroupDelegation {
    /// `user@1000.service`: systemd's per-user manager, whose subtree the user controls.
    public static func isUserManager(_ component: some Collection<UInt8>) -> Bool {
        let bytes = Array(component)
        guard let body = ContainerIdentity.strip(bytes, prefix: "user@", suffix: ".service") else { return false }
        return body.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// The index of the first component below which others name cgroups: a user manager or a
    /// container's own cgroup; nil when the whole path is the system's.
    public static func boundary(_ components: [[UInt8]]) -> Int? {
        var podUID: ByteString?
        for index in components.indices {
            if isUserManager(components[index]) { return index }
            if let uid = ContainerIdentity.podUIDComponent(components[index]) {
                podUID = uid
                continue
            }
            if ContainerIdentity.container(at: index, in: components, podUID: podUID) != nil { return index }
        }
        return nil
    }
}
