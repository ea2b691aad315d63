import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Names from a node's runtime state (Fixtures/runtime, see its README for where each file came
/// from), read through StateDirectory, and the hostile trees a runtime's directory or a
/// container's own root may hold.
@Suite struct ContainerNamerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/runtime").path
    static let docker = "f188180a47e8b12569619cd8eccaa7a771e8b1c8cee6745b3c865ebd13cd7fab"
    static let podman = "6aac44f485dfa6d3836b7065bf870c13b106d51be7e18e0912c67076399e0bf0"
    static let containerd = "4b5e2d1c9a8f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2918070605"
    static let sandbox = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
    static let crio = "c0ffee0ddba11cafe5eed0c0ffee0ddba11cafe5eed0c0ffee0ddba11cafe5ee"

    static func roots(_ base: String = fixtures) -> ContainerStateRoots {
        var roots = ContainerStateRoots()
        roots.docker = [base + "/docker"]
        roots.containerd = ["/nonexistent/containerd", base + "/containerd"]
        roots.storage = [base + "/storage"]
        roots.hostname = false
        return roots
    }

    static func process(_ runtime: ContainerIdentity.Runtime, _ id: String, pid: Int32 = 1) -> ProcessEntry {
        var d = ProcessDetails(identity: ProcessIdentity(pid: pid, startTime: 1), comm: "app")
        d.container = ContainerIdentity(runtime: runtime, id: ByteString(id))
        return ProcessEntry(details: d, inodes: [1], peers: [])
    }

    @Test func everyRuntimeIsNamedFromItsOwnState() {
        var namer = ContainerNamer(roots: Self.roots())
        var processes = [
            Self.process(.docker, Self.docker), Self.process(.podman, Self.podman),
            Self.process(.containerd, Self.containerd), Self.process(.containerd, Self.sandbox),
            Self.process(.crio, Self.crio), Self.process(.docker, String(repeating: "0", count: 64)),
        ]
        let report = namer.name(&processes, now: 100)
        let c = processes.map { $0.details.container! }
        #expect(c[0].name == "shop-orders-1" && c[0].composeProject == "shop" && c[0].composeService == "orders")
        #expect(c[1].name == "cwprobe")
        #expect(c[2].name == "app" && c[2].podName == "orders-7d9f-x2k4p" && c[2].podNamespace == "shop")
        #expect(c[2].podUID == "7d9f3c2a-1b4e-4f6a-9c8d-2e1f0a3b4c5d")
        #expect(c[2].described == "pod shop/orders-7d9f-x2k4p, container app")
        #expect(c[3].name == nil && c[3].podName == "orders-7d9f-x2k4p")
        #expect(c[4].name == "api" && c[4].podName == "billing-api-5c8d9-qw7rt" && c[4].podNamespace == "billing")
        #expect(c[5].name == nil)
        #expect(report.named == 5 && report.idOnly == 1 && report.unreadable == 0)
        #expect(
            report.note
                == "container names: 1 container known only by id (no runtime state under the [containers] roots)")
    }

    /// Named once: a second tick reads nothing (the state tree is gone and the name stays); a
    /// container nothing named is looked for again only after `retryAfter`.
    @Test func namesAreCachedPerContainerId() throws {
        let dir = try Self.copyOfFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var namer = ContainerNamer(roots: Self.roots(dir))
        let late = String(repeating: "ab", count: 32)
        var processes = [Self.process(.docker, Self.docker), Self.process(.docker, late)]
        _ = namer.name(&processes, now: 0)
        try FileManager.default.removeItem(atPath: dir + "/docker/containers/" + Self.docker)
        try FileManager.default.createDirectory(
            atPath: dir + "/docker/containers/" + late, withIntermediateDirectories: true)
        try #"{"Name":"/late"}"#.write(
            toFile: dir + "/docker/containers/\(late)/config.v2.json", atomically: true, encoding: .utf8)
        processes = [Self.process(.docker, Self.docker), Self.process(.docker, late)]
        _ = namer.name(&processes, now: 10)
        #expect(processes[0].details.container?.name == "shop-orders-1")
        #expect(processes[1].details.container?.name == nil)
        processes = [Self.process(.docker, late)]
        _ = namer.name(&processes, now: 10 + ContainerNamer.retryAfter)
        #expect(processes[0].details.container?.name == "late")
    }

    /// A symlink planted in the runtime's directory is never followed, a FIFO never hangs the
    /// read, an oversized or malformed file is refused — each counted and said.
    @Test func hostileStateIsRefusedAndSaid() throws {
        let dir = try Self.copyOfFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = (1...4).map { String(repeating: String($0), count: 64) }
        let containers = dir + "/docker/containers/"
        let base = String(containers.dropLast())
        // 1: the container's directory is a symlink to another container's.
        #expect(symlink(containers + Self.docker, containers + ids[0]) == 0)
        // 2: config.v2.json is a FIFO. 3: it is 2 MiB. 4: it is not JSON.
        for id in ids.dropFirst() {
            try FileManager.default.createDirectory(atPath: containers + id, withIntermediateDirectories: true)
        }
        #expect(mkfifo(containers + ids[1] + "/config.v2.json", 0o600) == 0)
        try Data(count: 2 << 20).write(to: URL(fileURLWithPath: containers + ids[2] + "/config.v2.json"))
        try "{\"Name\":".write(toFile: containers + ids[3] + "/config.v2.json", atomically: true, encoding: .utf8)
        var namer = ContainerNamer(roots: Self.roots(dir))
        var processes = ids.map { Self.process(.docker, $0) }
        let report = namer.name(&processes, now: 0)
        #expect(processes.allSatisfy { $0.details.container?.name == nil })
        #expect(report.unreadable == 4 && report.idOnly == 4)
        #expect(report.lastProblem?.hasSuffix("config.v2.json: invalid JSON at byte 8: unexpected end") == true)
        let failures: [StateDirectory.Failure?] = ids.map { id in
            do {
                _ = try StateDirectory(String(containers.dropLast())).read([id, "config.v2.json"], limit: 1 << 20)
                return nil
            } catch let error as StateDirectory.Failure { return error } catch { return nil }
        }
        #expect(failures[0] == .symlink(base + "/" + ids[0]))
        #expect(failures[1] == .notRegular(containers + ids[1] + "/config.v2.json"))
        #expect(failures[2] == .tooLarge(containers + ids[2] + "/config.v2.json", limit: 1 << 20))
    }

    /// With no runtime state, the container's own /etc/hostname is kept as a hint; a hostname
    /// that is a symlink (to the host's files, say) is not followed.
    @Test func theHostnameIsAHintReadWithoutFollowing() throws {
        let dir = try Self.copyOfFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let proc = dir + "/proc"
        for pid in [7, 8] {
            try FileManager.default.createDirectory(
                atPath: "\(proc)/\(pid)/root/etc", withIntermediateDirectories: true)
            try "\(pid) (app) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n".write(
                toFile: "\(proc)/\(pid)/stat", atomically: true, encoding: .utf8)
        }
        try "orders-7d9f-x2k4p\n".write(toFile: "\(proc)/7/root/etc/hostname", atomically: true, encoding: .utf8)
        #expect(symlink(dir + "/docker/containers/\(Self.docker)/config.v2.json", "\(proc)/8/root/etc/hostname") == 0)
        var roots = Self.roots(dir)
        roots.hostname = true
        var namer = ContainerNamer(roots: roots, proc: ProcFS(root: proc))
        var processes = [
            Self.process(.containerd, String(repeating: "7", count: 64), pid: 7),
            Self.process(.containerd, String(repeating: "8", count: 64), pid: 8),
        ]
        let report = namer.name(&processes, now: 0)
        #expect(processes[0].details.container?.hostname == "orders-7d9f-x2k4p")
        #expect(processes[0].details.container?.described.hasSuffix(", hostname orders-7d9f-x2k4p") == true)
        #expect(processes[1].details.container?.hostname == nil)
        #expect(report.hostnameOnly == 1 && report.idOnly == 1)
    }

    @Test func namesOffReadsNothing() {
        var roots = Self.roots()
        roots.names = false
        var namer = ContainerNamer(roots: roots)
        var processes = [Self.process(.docker, Self.docker)]
        #expect(namer.name(&processes, now: 0) == ContainerNamer.Report())
        #expect(processes[0].details.container?.name == nil)
    }

    static func copyOfFixtures() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-runtime-\(UUID().uuidString.prefix(8))"
        )
        .path
        try FileManager.default.copyItem(atPath: fixtures, toPath: dir)
        return dir
    }
}
