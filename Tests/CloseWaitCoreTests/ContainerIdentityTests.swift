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
        ("12:pids:/system.slice/docker-\(id).scope\n1:name=systemd:/system.slice/docker-\(id).scope\n0::/\n", "docker", id, nil, nil),
        ("11:memory:/docker/\(id)\n1:name=systemd:/docker/\(id)\n", "docker", id, nil, nil),
        // podman: systemd driver, cgroupfs driver (what podman uses on this machine)
        ("0::/machine.slice/libpod-\(id).scope/container\n", "podman", id, nil, nil),
        ("4:memory:/libpod_parent/libpod-\(id)\n0::/\n", "podman", id, nil, nil),
        // Kubernetes with containerd, systemd driver and cgroupfs driver
        ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(pod.replacingAll("-", with: "_")).slice/cri-containerd-\(id).scope\n",
         "containerd", id, nil, pod),
        ("5:cpu:/kubepods/besteffort/pod\(pod)/\(id)\n", "containerd", id, nil, pod),
        // CRI-O
        ("0::/kubepods.slice/kubepods-pod\(pod.replacingAll("-", with: "_")).slice/crio-\(id).scope\n", "crio", id, nil, pod),
        // systemd-nspawn / machined
        ("0::/machine.slice/machine-web\\x2d01.scope/payload\n", "nspawn", "web-01", "web-01", nil),
        ("0::/machine.slice/systemd-nspawn@db.service/payload/system.slice/postgres.service\n", "nspawn", "db", "db", nil),
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
