/// Hold says how long a condition must persist before it fires.
public enum Hold: Equatable, Sendable {
    /// N consecutive samples.
    case samples(Int)
    /// A time span, in seconds.
    case duration(Double)
}

/// Thresholds are the per-process alert levels; 0 disables a condition.
public struct Thresholds: Equatable, Sendable {
    public var countWarning = 100
    public var countCritical = 500
    /// New CLOSE_WAIT sockets per minute, over the tracker window.
    public var growthWarning = 5.0
    public var growthCritical = 30.0
    /// Age of the oldest CLOSE_WAIT socket, seconds.
    public var ageWarning = 1800.0
    public var ageCritical = 7200.0
    /// Predicted time until the soft fd limit is reached, seconds; fires when lower.
    public var exhaustionWarning = 3600.0
    public var exhaustionCritical = 900.0
    /// Below this many CLOSE_WAIT sockets a process raises no growth, age or exhaustion alert.
    public var minCount = 5

    public init() {}
}

/// Rule overrides the thresholds for the processes it matches (first match wins).
public struct Rule: Equatable, Sendable {
    public var name: String
    public var matchUnit: String?
    public var matchComm: String?
    public var matchExe: String?
    /// Glob on `runtime:id` (`podman:3f2a*`) or the container's name (`docker ps` NAMES, the
    /// Kubernetes container name, an nspawn machine).
    public var matchContainer: String?
    /// Globs on the Kubernetes pod's name and its namespace (from the runtime's state).
    public var matchPod: String?
    public var matchNamespace: String?
    public var ignore = false
    public var thresholds: Thresholds

    public init(
        name: String, matchUnit: String? = nil, matchComm: String? = nil, matchExe: String? = nil,
        matchContainer: String? = nil, matchPod: String? = nil, matchNamespace: String? = nil,
        ignore: Bool = false, thresholds: Thresholds = Thresholds()
    ) {
        self.name = name
        self.matchUnit = matchUnit
        self.matchComm = matchComm
        self.matchExe = matchExe
        self.matchContainer = matchContainer
        self.matchPod = matchPod
        self.matchNamespace = matchNamespace
        self.ignore = ignore
        self.thresholds = thresholds
    }

    /// Every pattern given must match (globs).
    public func matches(_ process: ProcessDetails) -> Bool {
        if let matchUnit, !Glob.matches(matchUnit, process.unit ?? "") { return false }
        if let matchComm, !Glob.matches(matchComm, process.comm) { return false }
        if let matchExe, !Glob.matches(matchExe, process.exe ?? "") { return false }
        if let matchContainer {
            guard let keys = process.container?.matchKeys, keys.contains(where: { Glob.matches(matchContainer, $0) })
            else { return false }
        }
        // A pod of a user's own subtree is never the cluster's: only a pattern naming the
        // user manager (`user@1000.service: *`) could match it, and pods are the system's.
        if let matchPod {
            guard let c = process.container, c.userManager == nil, let pod = c.podName, Glob.matches(matchPod, pod)
            else { return false }
        }
        if let matchNamespace {
            guard let c = process.container, c.userManager == nil, let namespace = c.podNamespace,
                Glob.matches(matchNamespace, namespace)
            else { return false }
        }
        return true
    }
}

/// ContainerStateRoots are where the container runtimes keep their state on this host
/// (`[containers]`), read for names: never written, never followed out of by a symlink.
/// Under Kubernetes the node's directories are mounted into the DaemonSet's pod, and these
/// name where.
public struct ContainerStateRoots: Equatable, Sendable {
    /// Off: containers are known by runtime and id only.
    public var names = true
    /// Docker's data-root (`containers/ID/config.v2.json`).
    public var docker = ["/var/lib/docker"]
    /// containerd's state directory (`io.containerd.runtime.v2.task/NAMESPACE/ID/config.json`);
    /// k3s keeps its own under /run/k3s/containerd.
    public var containerd = ["/run/containerd"]
    /// containers/storage's graph and run roots, podman's and CRI-O's
    /// (`overlay-containers/containers.json`, `overlay-containers/ID/userdata/config.json`).
    public var storage = ["/var/lib/containers/storage", "/run/containers/storage"]
    /// Read a container's /etc/hostname when no runtime state names it (shown as a hint).
    public var hostname = true

    public init() {}
}

/// SourceChoice is where sockets are sampled from (`daemon.source`, `--source`): netlink
/// sock_diag, /proc/net/tcp{,6}, or netlink falling back to /proc.
public enum SourceChoice: String, Sendable, CaseIterable {
    case netlink, proc, auto
}

/// ScannerChoice is how sockets and their owners are found (`daemon.scanner`, `--scanner`):
/// `ebpf`, one kernel iterator pass over every process's open files (every namespace, exact
/// owners) that a tick without a CLOSE_WAIT change skips; `poll`, the kernel's socket tables
/// (netlink, /proc/PID/net/tcp) and the owner index over /proc/*/fd; `auto`, eBPF where it
/// loads and attaches, polling otherwise (and saying why).
public enum ScannerChoice: String, Sendable, CaseIterable {
    case auto, ebpf, poll
}

/// Settings is the validated configuration of the daemon.
public struct Settings: Equatable, Sendable {
    public var interval = 5.0
    public var source = SourceChoice.auto
    public var scanner = ScannerChoice.auto
    /// Sample every network namespace on the host (`all`) or only the daemon's (`own`).
    public var namespaces = NamespaceChoice.all
    public var window = 300.0
    /// The fd walk runs in full at least this often; between, cached owners are verified.
    public var fullScanInterval = 300.0
    /// Processes tracked at most (after grouping forked sharers of the same sockets); the
    /// rest, those with the fewest sockets, are counted and said (`Snapshot.untracked`).
    public var maxProcesses = Snapshot.defaultMaxProcesses
    public var hold = Hold.samples(3)
    public var reminder = 1800.0
    public var cooldown = 60.0
    public var clearRatio = 0.8
    public var thresholds = Thresholds()
    public var totalWarning = 1000
    public var totalCritical = 5000
    /// CLOSE_WAIT sockets (listen backlog aside) that no process's fd table holds: sockets in
    /// flight in a unix socket's queue (SCM_RIGHTS), or held where /proc cannot show them.
    public var unownedWarning = 100
    public var unownedCritical = 1000
    public var rules: [Rule] = []
    /// `[metrics] textfile`: a node_exporter textfile-collector file rewritten each tick.
    public var metricsTextfile: String?
    /// `[metrics] listen`: serve GET /metrics on this address (hosts without systemd's socket
    /// unit); nil: only an inherited socket (socket activation) serves.
    public var metricsListen: ListenAddress?
    /// `[actions]` and `[[action]]`: what to do on alerts (nothing unless written).
    public var actions = ActionSettings()
    /// `[containers]`: where the runtimes' state is read for names.
    public var containers = ContainerStateRoots()
    /// `[metrics] max_processes`: the cap on per-process series.
    public var metricsMaxProcesses = Metrics.defaultMaxProcesses

    public init() {}

    /// The rule that governs a process: the first matching rule, or the defaults.
    public func rule(for process: ProcessDetails) -> Rule {
        rules.first { $0.matches(process) } ?? Rule(name: "default", thresholds: thresholds)
    }
}
