@testable import CloseWaitCore
import Testing

/// Container identity from /proc/<pid>/cgroup for every runtime, cgroup v1, hybrid and v2,
/// systemd and cgroupfs drivers (issue 10).
@Suite struct ContainerIdentityTests {
    static let id = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
    static let pod = "0f3c9a52-6d1e-4b7a-9c2d-1e2f3a4b5c6d"

    @Test(arguments: [
        // docker, systemd driver (v2 and v1 hybrid) and cgroupfs driver (v1)
        ("0::/system.slice/docker-\(id).scope\n", "docker", id, nil as String?, nil as String?),
        (
            "12:pids:/system.slice/docker-\(id).scope\n1:name=systemd:/system.slice/docker-\(id).scope\n0::/\n",
            "docker", id, nil, nil
        ),
        ("11:memory:/docker/\(id)\n1:name=systemd:/docker/\(id)\n", "docker", id, nil, nil),
        // podman: systemd driver, cgroupfs driver (what podman uses on this machine)
        ("0::/machine.slice/libpod-\(id).scope/container\n", "podman", id, nil, nil),
        ("4:memory:/libpod_parent/libpod-\(id)\n0::/\n", "podman", id, nil, nil),
        // Kubernetes with containerd, systemd driver and cgroupfs driver
        (
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(pod.replacingAll("-", with: "_")).slice/cri-containerd-\(id).scope\n",
            "containerd", id, nil, pod
        ),
        ("5:cpu:/kubepods/besteffort/pod\(pod)/\(id)\n", "containerd", id, nil, pod),
        // CRI-O
        (
            "0::/kubepods.slice/kubepods-pod\(pod.replacingAll("-", with: "_")).slice/crio-\(id).scope\n", "crio", id,
            nil, pod
        ),
        // systemd-nspawn / machined
        ("0::/machine.slice/machine-web\\x2d01.scope/payload\n", "nspawn", "web-01", "web-01", nil),
        (
            "0::/machine.slice/systemd-nspawn@db.service/payload/system.slice/postgres.service\n", "nspawn", "db", "db",
            nil
        ),
        // LXC
        ("0::/lxc.payload.build-box/init.scope\n", "lxc", "build-box", "build-box", nil),
        ("3:cpu:/lxc/legacy\n", "lxc", "legacy", "legacy", nil),
    ])
    func everyRuntimeIsNamed(text: String, runtime: String, id: String, name: String?, pod: String?) {
        let found = ContainerIdentity.fromCgroup(Array(text.utf8))
        #expect(found?.runtime.rawValue == runtime)
        #expect(found?.id == ByteString(id))
        #expect(found?.name == name.map { ByteString($0) })
        #expect(found?.podUID == pod.map { ByteString($0) })
    }

    @Test(arguments: [
        "0::/system.slice/orders.service\n",
        "0::/user.slice/user-1000.slice/session-3.scope\n",
        "0::/machine.slice/libpod-conmon-\(id).scope\n",  // podman's monitor, not the container
        "0::/system.slice/docker-notanid.scope\n",
        "0::/\n",
        "",
    ])
    func hostProcessesHaveNoContainer(text: String) {
        #expect(ContainerIdentity.fromCgroup(Array(text.utf8)) == nil)
    }

    @Test func labelsAreShortAndEscaped() {
        #expect(ContainerIdentity(runtime: .podman, id: ByteString(Self.id)).label == "podman:3f2a1b4c5d6e")
        #expect(ContainerIdentity(runtime: .lxc, id: ByteString("a\u{1b}b")).label == "lxc:a\\x1bb")
    }
}

/// Where a process runs shows in every output, and rules can match it.
@Suite struct ContainerOutputTests {
    static func inPodman() -> ProcessDetails {
        var d = ProcessDetails(
            identity: ProcessIdentity(pid: 4242, startTime: 9), comm: "java", unit: "libpod-x.scope",
            fdOpen: 50, fdLimit: 1024)
        d.container = ContainerIdentity(runtime: .podman, id: ByteString(ContainerIdentityTests.id))
        d.innerPID = 7
        return d
    }

    @Test func alertsNameTheContainerAndThePidInside() {
        let d = Self.inPodman()
        let peer = PeerCount(endpoint: Endpoint(address: .v4(10, 0, 0, 5), port: 80), count: 60)
        let status = ProcessStatus(
            details: d, count: 60, peers: [peer], growthPerMinute: nil, oldestAge: 30, since: 0,
            predictedExhaustion: nil)
        let entry = AlertMessage.entry(
            AlertEvent(
                kind: .crossed, reason: .count, level: .warning, process: status, total: 60,
                value: 60, threshold: 50, rule: "default"))
        #expect(
            entry.message.hasPrefix(
                "java[4242] (container podman:3f2a1b4c5d6e, pid 7 inside) (libpod-x.scope) holds 60"))
        #expect(entry.field("CLOSEWAIT_CONTAINER_RUNTIME") == "podman")
        #expect(entry.field("CLOSEWAIT_CONTAINER_ID") == ContainerIdentityTests.id)
        #expect(entry.field("CLOSEWAIT_NSPID") == "7")
        #expect(entry.field("CLOSEWAIT_POD_UID") == nil)
    }

    @Test func rulesMatchContainersByRuntimeIdOrName() {
        let d = Self.inPodman()
        #expect(Rule(name: "r", matchContainer: "podman:3f2a*").matches(d))
        #expect(!Rule(name: "r", matchContainer: "docker:*").matches(d))
        var host = d
        host.container = nil
        #expect(!Rule(name: "r", matchContainer: "*").matches(host))
        var machine = d
        machine.container = ContainerIdentity(runtime: .nspawn, id: "web-01", name: "web-01")
        #expect(Rule(name: "r", matchContainer: "web-*").matches(machine))
    }

    @Test func tablesAndTheStateShowTheContainer() throws {
        let d = Self.inPodman()
        let snapshot = Snapshot(
            source: .netlink, states: [.closeWait], sockets: [],
            processes: [ProcessEntry(details: d, inodes: [1], peers: [])], statistics: ScanStatistics())
        let table = SnapshotReport.table(snapshot)
        #expect(table.contains("CONTAINER"))
        #expect(table.contains("podman:3f2a1b4c5d6e pid 7"))
        #expect(SnapshotReport.json(snapshot).rendered().contains("\"container\":{\"runtime\":\"podman\""))
        let status = ProcessStatus(
            details: d, count: 1, peers: [], growthPerMinute: nil, oldestAge: 0, since: 0, predictedExhaustion: nil)
        let doc = StateDocument(
            statuses: [status], firing: [], total: 1, status: "x", daemonPID: 1, ticks: 1, wallTime: 0, interval: 5)
        let decoded = try StateDocument.decode(doc.json().renderedBytes())
        #expect(decoded.processes[0].container == "podman:" + ContainerIdentityTests.id)
        #expect(decoded.processes[0].innerPid == 7)
        #expect(StateDocument.table(decoded, age: 0).contains("podman:3f2a1b4c5d6e pid 7"))
    }
}
