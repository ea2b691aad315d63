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
    /// Its name: nspawn's and LXC's from the cgroup (the same as `id`); for docker, podman,
    /// containerd and CRI-O from the runtime's state on the host (`docker ps` NAMES, the
    /// Kubernetes container name), filled in by the daemon's container namer.
    public var name: ByteString?
    /// The Kubernetes pod uid (with dashes), for containerd and CRI-O under kubepods.
    public var podUID: ByteString?
    /// The Kubernetes pod and its namespace, from the runtime's state (CRI annotations).
    public var podName: ByteString?
    public var podNamespace: ByteString?
    /// Docker Compose's project and service labels, where the container has them.
    public var composeProject: ByteString?
    public var composeService: ByteString?
    /// The container's own /etc/hostname, read only when no runtime state named it: chosen by
    /// whoever runs in the container, so shown as a hint and never matched by a rule.
    public var hostname: ByteString?
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

    /// Whether `name` came from somewhere other than the id (nspawn and LXC names are ids).
    var hasOwnName: Bool { name != nil && name != id }

    /// How an operator knows it, escaped: `pod shop/orders-7d9f-x2k4p, container app`, or
    /// `container orders (docker:3f2a1b4c5d6e)`, or `container podman:3f2a1b4c5d6e` (with
    /// `, hostname web-1` when only its own hostname said more).
    public var described: String {
        if let podName {
            let pod = (podNamespace.map { $0.escaped + "/" } ?? "") + podName.escaped
            return (userManager.map { $0.escaped + ": " } ?? "") + "pod " + pod
                + (name.map { ", container " + $0.escaped } ?? "")
        }
        if hasOwnName, let name {
            return "container " + (userManager.map { $0.escaped + ": " } ?? "") + name.escaped + " ("
                + Self.shortLabel(
                    runtime: runtime.rawValue, id: id.escaped) + ")"
        }
        return "container " + label + (hostname.map { ", hostname " + $0.escaped } ?? "")
    }

    /// A table cell: `shop/orders-7d9f-x2k4p/app`, `orders`, or the label; escaped.
    public var cell: String {
        let owner = userManager.map { $0.escaped + ": " } ?? ""
        let named = Self.namedCell(
            podNamespace: podNamespace?.escaped, podName: podName?.escaped, name: hasOwnName ? name?.escaped : nil)
        return named.map { owner + $0 } ?? label
    }

    /// `namespace/pod/container`, `namespace/pod` or the container's name, from escaped parts;
    /// nil when there is no name (the state document's table builds it from its strings too).
    public static func namedCell(podNamespace: String?, podName: String?, name: String?) -> String? {
        if let podName { return (podNamespace.map { $0 + "/" } ?? "") + podName + (name.map { "/" + $0 } ?? "") }
        return name
    }

    /// Takes what the runtime's state says (a name the cgroup gave is kept).
    public mutating func adopt(_ names: ContainerNames) {
        if let n = names.name { name = n }
        podName = names.podName ?? podName
        podNamespace = names.podNamespace ?? podNamespace
        podUID = podUID ?? names.podUID
        composeProject = names.composeProject
        composeService = names.composeService
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
    /// matches a cgroup a user named `docker-<hex>.scope` in their own subtree. The hostname
    /// is never a key: the container's own processes choose it.
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
