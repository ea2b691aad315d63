import CloseWaitCore
import Glibc

/// ContainerNamer gives the containers of a snapshot their names from the runtimes' own state
/// on the host — no API call, no socket: Docker's `containers/ID/config.v2.json`, containerd's
/// task `config.json` (CRI annotations: pod, namespace, container), CRI-O's `config.json` and
/// podman's containers/storage list — read through `StateDirectory` (bounded, no symlink
/// followed below the configured roots). When none names a container, its own /etc/hostname
/// (through /proc/PID/root, the same way) is kept as a hint. Cached per container id: a
/// container's name does not change while its id lives; a container nothing named is looked
/// for again after `retryAfter`.
public struct ContainerNamer {
    public var roots: ContainerStateRoots {
        didSet { if roots != oldValue { cache = [:]; storage = nil } }
    }
    let proc: ProcFS

    struct Key: Hashable {
        var runtime: ContainerIdentity.Runtime
        var id: ByteString
        var userManager: ByteString?
    }
    struct Entry {
        var names: ContainerNames?
        var hostname: ByteString?
        var checked: Double
        var seen: Double
    }
    var cache: [Key: Entry] = [:]
    /// containers/storage's id -> name lists (podman), with when they were read.
    var storage: (names: [String: ByteString], read: Double)?

    /// Seconds before a container nothing named is looked for again.
    public static let retryAfter = 30.0
    /// Seconds a container unseen stays cached.
    public static let forgetAfter = 600.0
    public static let configLimit = 1 << 20
    public static let storageListLimit = 16 << 20
    /// containerd namespaces looked through (`k8s.io` first).
    public static let maxNamespaces = 64

    public init(roots: ContainerStateRoots = ContainerStateRoots(), proc: ProcFS = ProcFS()) {
        self.roots = roots
        self.proc = proc
    }

    /// What naming found this tick, for the tick's health.
    public struct Report: Equatable, Sendable {
        /// Containers named by their runtime's state, or only by their own hostname.
        public var named = 0
        public var hostnameOnly = 0
        /// Containers whose runtime keeps names but whose state was not found under the roots.
        public var idOnly = 0
        /// State files that exist but could not be used (permission, size, symlink, bad JSON).
        public var unreadable = 0
        public var lastProblem: String?

        public init() {}

        /// One sentence for STATUS and the state file's warnings, or nil when all is well.
        public var note: String? {
            var parts = [String]()
            if idOnly > 0 {
                parts.append(
                    "\(idOnly) \(idOnly == 1 ? "container" : "containers") known only by id (no runtime state under the [containers] roots)"
                )
            }
            if unreadable > 0, let lastProblem {
                parts.append(
                    "\(unreadable) runtime state \(unreadable == 1 ? "file" : "files") unreadable (\(Escape.line(lastProblem, limit: 160)))"
                )
            }
            return parts.isEmpty ? nil : "container names: " + parts.joined(separator: "; ")
        }
    }

    /// Fills in the names of every process's container, from the cache or the runtime's state.
    public mutating func name(_ processes: inout [ProcessEntry], now: Double) -> Report {
        var report = Report()
        guard roots.names else { return report }
        var counted = Set<Key>()
        for index in processes.indices {
            guard var container = processes[index].details.container, Self.keepsNames(container.runtime) else {
                continue
            }
            let key = Key(runtime: container.runtime, id: container.id, userManager: container.userManager)
            var entry = cache[key]
            if entry == nil || (entry?.names == nil && now - (entry?.checked ?? 0) >= Self.retryAfter) {
                entry = lookup(container, pid: processes[index].details.identity, now: now, report: &report)
            }
            entry?.seen = now
            cache[key] = entry
            if let names = entry?.names { container.adopt(names) }
            container.hostname = entry?.names == nil ? entry?.hostname : nil
            processes[index].details.container = container
            if counted.insert(key).inserted {
                if entry?.names != nil {
                    report.named += 1
                } else if entry?.hostname != nil {
                    report.hostnameOnly += 1
                } else {
                    report.idOnly += 1
                }
            }
        }
        if cache.count > 256 { cache = cache.filter { now - $0.value.seen < Self.forgetAfter } }
        return report
    }

    /// nspawn and LXC are named by their cgroup already.
    static func keepsNames(_ runtime: ContainerIdentity.Runtime) -> Bool {
        switch runtime {
        case .docker, .podman, .containerd, .crio: true
        case .nspawn, .lxc: false
        }
    }

    mutating func lookup(_ c: ContainerIdentity, pid: ProcessIdentity, now: Double, report: inout Report) -> Entry {
        var entry = Entry(checked: now, seen: now)
        // A user's rootless container keeps its state in the user's home: not looked for.
        if c.userManager == nil {
            let names = stateNames(c, now: now, report: &report)
            entry.names = names.flatMap { $0.isEmpty ? nil : $0 }
        }
        if entry.names == nil, roots.hostname { entry.hostname = hostname(of: pid) }
        return entry
    }

    /// The names the container's runtime keeps, or nil when its state is not found.
    mutating func stateNames(_ c: ContainerIdentity, now: Double, report: inout Report) -> ContainerNames? {
        let id = c.id.lossy
        switch c.runtime {
        case .docker:
            for root in roots.docker {
                if let names = parse(root, ["containers", id, "config.v2.json"], DockerConfigV2.names, &report) {
                    return names
                }
            }
        case .containerd:
            let tasks = "io.containerd.runtime.v2.task"
            for root in roots.containerd {
                let namespaces: [String]
                do {
                    namespaces = try StateDirectory(root).list([tasks], limit: Self.maxNamespaces)
                } catch {
                    note(error, &report)
                    continue
                }
                for ns in namespaces.sorted(by: { ($0 == "k8s.io" ? 0 : 1, $0) < ($1 == "k8s.io" ? 0 : 1, $1) }) {
                    if let names = parse(root, [tasks, ns, id, "config.json"], OCIConfig.names, &report) {
                        return names
                    }
                }
            }
        case .crio:
            for root in roots.storage {
                for driver in Self.storageDrivers {
                    if let names = parse(
                        root, [driver + "-containers", id, "userdata", "config.json"], OCIConfig.names, &report)
                    {
                        return names
                    }
                }
            }
        case .podman:
            if storage == nil || (storage?.names[id] == nil && now - (storage?.read ?? 0) >= 1) {
                storage = (readStorageLists(&report), now)
            }
            if let name = storage?.names[id] { return ContainerNames(name: name) }
        case .nspawn, .lxc:
            break
        }
        return nil
    }

    /// containers/storage's driver directories looked in (`overlay-containers`, …).
    static let storageDrivers = ["overlay", "vfs", "btrfs", "zfs"]

    /// Every podman container's name under the storage roots: the persistent list
    /// (`containers.json`) and the volatile one (`volatile-containers.json`, `--rm` containers
    /// of newer podman, under the run root).
    func readStorageLists(_ report: inout Report) -> [String: ByteString] {
        var all = [String: ByteString]()
        for root in roots.storage {
            for driver in Self.storageDrivers {
                for file in ["containers.json", "volatile-containers.json"] {
                    if let names = parse(
                        root, [driver + "-containers", file], StorageContainers.names, &report,
                        limit: Self.storageListLimit)
                    {
                        all.merge(names) { first, _ in first }
                    }
                }
            }
        }
        return all
    }

    func parse<T>(
        _ root: String, _ components: [String], _ parser: ([UInt8]) throws(RuntimeStateError) -> T,
        _ report: inout Report, limit: Int = configLimit
    ) -> T? {
        do {
            let bytes = try StateDirectory(root).read(components, limit: limit)
            do {
                return try parser(bytes)
            } catch {
                report.unreadable += 1
                report.lastProblem = ([root] + components).joined(separator: "/") + ": " + error.description
            }
        } catch {
            note(error, &report)
        }
        return nil
    }

    func note(_ failure: StateDirectory.Failure, _ report: inout Report) {
        guard failure != .missing else { return }
        report.unreadable += 1
        report.lastProblem = failure.description
    }

    /// The container's /etc/hostname through one of its processes' root, when that process is
    /// still the one sampled (same start time after the read): a hint, never a rule's key.
    /// Whatever keeps it from being read (the container's own files: a symlink, a FIFO, none)
    /// leaves the container known by id, which the report says.
    func hostname(of pid: ProcessIdentity) -> ByteString? {
        guard let bytes = try? StateDirectory(proc.root + "/\(pid.pid)/root").read(["etc", "hostname"], limit: 256)
        else { return nil }
        guard proc.isStill(pid) else { return nil }
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let trimmed = line.prefix(64)
        return trimmed.isEmpty ? nil : ByteString(Array(trimmed))
    }
}
