/// ContainerIdentity names the container a process runs in, as its cgroup path shows it:
/// the runtime, the container id (or name) and, under Kubernetes, the pod uid. Cgroup paths
/// are named by container managers and delegated users: untrusted bytes in, escaped text out.
public struct ContainerIdentity: Hashable, Sendable {
    public enum Runtime: String, Sendable, CaseIterable {
        case docker, podman, containerd, crio, nspawn, lxc
    }

    public var runtime: Runtime
    /// The container id (hex for docker, podman, containerd and CRI-O), or the machine /
    /// container name (systemd-nspawn, LXC).
    public var id: ByteString
    /// A human name when the path carries one (nspawn and LXC: the same as `id`).
    public var name: ByteString?
    /// The Kubernetes pod uid (with dashes), for containerd and CRI-O under kubepods.
    public var podUID: ByteString?
    /// The user manager (`user@1000.service`) whose delegated subtree the container's cgroup
    /// is in: a rootless container, or a cgroup the user named like a container. Such a
    /// container is the user's and never matches a rule written for a system container.
    public var userManager: ByteString?

    public init(
        runtime: Runtime, id: ByteString, name: ByteString? = nil, podUID: ByteString? = nil,
        userManager: ByteString? = nil
    ) {
        self.runtime = runtime
        self.id = id
        self.name = name
        self.podUID = podUID
        self.userManager = userManager
    }

    /// `podman:3f2a1b4c5d6e` (ids cut to 12 characters, as `docker ps` shows them), or
    /// `user@1000.service: podman:3f2a1b4c5d6e` for a container in a user's subtree.
    public var label: String {
        (userManager.map { $0.escaped + ": " } ?? "") + Self.shortLabel(runtime: runtime.rawValue, id: id.escaped)
    }

    /// `runtime:id` in full, prefixed with the user manager for a user's container: the state
    /// document's `container`.
    public var fullLabel: ByteString {
        (userManager.map { $0 + ": " } ?? "") + ByteString(runtime.rawValue + ":") + id
    }

    /// `runtime:id` with the id cut to 12 characters where ids are hashes (not for nspawn
    /// and LXC, whose ids are names); `id` already escaped.
    public static func shortLabel(runtime: String, id: String) -> String {
        let named = runtime == Runtime.nspawn.rawValue || runtime == Runtime.lxc.rawValue
        return runtime + ":" + (named ? id : String(id.prefix(12)))
    }

    /// `runtime:id` in full, what `match_container` globs against (with the name, if any);
    /// both prefixed with `user@UID.service: ` for a user's container, so `docker:*` never
    /// matches a cgroup a user named `docker-<hex>.scope` in their own subtree.
    public var matchKeys: [ByteString] {
        let prefix = userManager.map { $0 + ": " } ?? ""
        return [prefix + ByteString(runtime.rawValue + ":") + id] + (name.map { [prefix + $0] } ?? [])
    }

    /// The container of the process whose /proc/<pid>/cgroup is `bytes`, or nil (the host).
    /// Reads the unified hierarchy (`0::/…`) first, then every v1 hierarchy, so the systemd
    /// and cgroupfs drivers, cgroup v1, hybrid and v2 all work.
    public static func fromCgroup(_ bytes: some Collection<UInt8>) -> ContainerIdentity? {
        var paths = [ArraySlice<UInt8>]()
        for line in Array(bytes).asciiLines {
            let parts = line.split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0].elementsEqual("0".utf8) && parts[1].isEmpty {
                paths.insert(parts[2], at: 0)
            } else {
                paths.append(parts[2])
            }
        }
        for path in paths {
            if let found = fromPath(Array(path)) { return found }
        }
        return nil
    }

    /// The container named by one cgroup path, or nil.
    public static func fromPath(_ path: [UInt8]) -> ContainerIdentity? {
        let components = path.split(separator: UInt8(ascii: "/")).map { Array($0) }
        var userManager: ByteString?
        var podUID: ByteString?
        for index in components.indices {
            if userManager == nil, CgroupDelegation.isUserManager(components[index]) {
                userManager = ByteString(components[index])
                continue
            }
            // Kubernetes: kubepods-burstable-pod<uid with _>.slice (systemd), pod<uid> (cgroupfs).
            if let uid = podUIDComponent(components[index]) {
                podUID = uid
                continue
            }
            if var found = container(at: index, in: components, podUID: podUID) {
                found.userManager = userManager
                return found
            }
        }
        return nil
    }

    /// The container whose cgroup is component `index` of `components`, or nil.
    /// `podUID`: the pod of the nearest Kubernetes pod component above it.
    static func container(at index: Int, in components: [[UInt8]], podUID: ByteString?) -> ContainerIdentity? {
        let text = components[index]
        if let id = strip(text, prefix: "docker-", suffix: ".scope"), isHexID(id) {
            return ContainerIdentity(runtime: .docker, id: ByteString(id))
        }
        if index > 0, components[index - 1].elementsEqual("docker".utf8), isHexID(text) {
            return ContainerIdentity(runtime: .docker, id: ByteString(text))
        }
        if let id = strip(text, prefix: "libpod-", suffix: ".scope") ?? strip(text, prefix: "libpod-", suffix: ""),
            !id.starts(with: "conmon-".utf8), isHexID(id)
        {
            return ContainerIdentity(runtime: .podman, id: ByteString(id))
        }
        if let id = strip(text, prefix: "cri-containerd-", suffix: ".scope"), isHexID(id) {
            return ContainerIdentity(runtime: .containerd, id: ByteString(id), podUID: podUID)
        }
        if let id = strip(text, prefix: "crio-", suffix: ".scope") ?? strip(text, prefix: "crio-", suffix: ""),
            !id.starts(with: "conmon-".utf8), isHexID(id)
        {
            return ContainerIdentity(runtime: .crio, id: ByteString(id), podUID: podUID)
        }
        if podUID != nil, index > 0, podUIDComponent(components[index - 1]) != nil, isHexID(text) {
            // cgroupfs driver under kubepods: /kubepods/burstable/pod<uid>/<id> (containerd).
            return ContainerIdentity(runtime: .containerd, id: ByteString(text), podUID: podUID)
        }
        if let escaped = strip(text, prefix: "machine-", suffix: ".scope") {
            let name = ByteString(unescapeUnitName(escaped))
            return ContainerIdentity(runtime: .nspawn, id: name, name: name)
        }
        if let escaped = strip(text, prefix: "systemd-nspawn@", suffix: ".service") {
            let name = ByteString(unescapeUnitName(escaped))
            return ContainerIdentity(runtime: .nspawn, id: name, name: name)
        }
        if let name = strip(text, prefix: "lxc.payload.", suffix: ""), !name.isEmpty {
            return ContainerIdentity(runtime: .lxc, id: ByteString(name), name: ByteString(name))
        }
        if index > 0, components[index - 1].elementsEqual("lxc".utf8), !text.isEmpty {
            return ContainerIdentity(runtime: .lxc, id: ByteString(text), name: ByteString(text))
        }
        return nil
    }

    static func strip(_ text: [UInt8], prefix: String, suffix: String) -> [UInt8]? {
        let p = Array(prefix.utf8), s = Array(suffix.utf8)
        guard text.count > p.count + s.count, text.starts(with: p), text.reversed().starts(with: s.reversed()) else {
            return nil
        }
        return Array(text[p.count..<(text.count - s.count)])
    }

    /// 12 to 64 lowercase hex digits: what container ids look like.
    static func isHexID(_ text: [UInt8]) -> Bool {
        (12...64).contains(text.count) && text.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// The pod uid in `kubepods-…-pod<uid>.slice` (underscores for dashes) or `pod<uid>`.
    static func podUIDComponent(_ text: [UInt8]) -> ByteString? {
        var body = text
        if text.starts(with: "kubepods".utf8), let slice = strip(text, prefix: "", suffix: ".slice") ?? Optional(text),
            let range = lastRange(of: Array("-pod".utf8), in: slice)
        {
            body = Array(slice[range.upperBound...])
            body = body.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }
        } else if let rest = strip(text, prefix: "pod", suffix: "") {
            body = rest
        } else {
            return nil
        }
        // 8-4-4-4-12 hex digits.
        let groups = body.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12],
            groups.allSatisfy({ $0.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) } })
        else { return nil }
        return ByteString(body)
    }

    static func lastRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        for start in stride(from: haystack.count - needle.count, through: 0, by: -1)
        where Array(haystack[start..<start + needle.count]) == needle {
            return start..<start + needle.count
        }
        return nil
    }

    /// systemd unit-name escaping undone: `\x2d` -> `-` (machine names with dashes).
    static func unescapeUnitName(_ text: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "\\"), i + 3 < text.count, text[i + 1] == UInt8(ascii: "x"),
                let byte = UInt8(String(decoding: text[(i + 2)...(i + 3)], as: UTF8.self), radix: 16)
            {
                out.append(byte)
                i += 4
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }
}
