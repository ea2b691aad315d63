@testable import CloseWaitCore
import Testing

/// Names found in a delegated cgroup subtree are the delegate's (issue 17, row 6): a local
/// user running `systemd-run --user --unit=legacy-proxy` or naming a cgroup
/// `docker-<64 hex>.scope` in their own subtree must not borrow a system identity.
@Suite struct CgroupDelegationTests {
    static let id = ContainerIdentityTests.id
    static let user = "0::/user.slice/user-1000.slice/user@1000.service"

    @Test(
        arguments: [
            ("\(user)/app.slice/legacy-proxy.service\n", "user@1000.service: legacy-proxy.service"),
            ("\(user)/init.scope\n", "user@1000.service: init.scope"),
            ("\(user)\n", "user@1000.service"),
            ("0::/system.slice/legacy-proxy.service\n", "legacy-proxy.service"),
            // A container's own systemd names units inside it: the container's, not the host's.
            (
                "0::/machine.slice/machine-web.scope/payload/system.slice/cwleak.service\n",
                "machine-web.scope: cwleak.service"
            ),
            ("0::/system.slice/docker-\(id).scope/x/orders.service\n", "docker-\(id).scope: orders.service"),
            ("0::/system.slice/docker-\(id).scope/inner\n", "docker-\(id).scope"),
            // A user@ component below a container is the container's business.
            (
                "0::/machine.slice/machine-web.scope/payload/user.slice/user-1000.slice/user@1000.service/a.service\n",
                "machine-web.scope: a.service"
            ),
            // Only `user@DIGITS.service` is a user manager.
            ("0::/system.slice/user@x.service/a.service\n", "a.service"),
            // v1 name=systemd as well.
            (
                "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/legacy-proxy.service\n",
                "user@1000.service: legacy-proxy.service"
            ),
        ] as [(String, String)])
    func unitsBelowABoundaryNameIt(text: String, unit: String) {
        #expect(ProcPidCgroup.unit(text) == ByteString(unit))
    }

    @Test func aUsersContainerIsTheUsers() throws {
        let text = "\(Self.user)/app.slice/docker-\(Self.id).scope\n"
        let found = try #require(ContainerIdentity.fromCgroup(Array(text.utf8)))
        #expect(found.runtime == .docker)
        #expect(found.userManager == "user@1000.service")
        #expect(found.label == "user@1000.service: docker:3f2a1b4c5d6e")
        // Rootless podman, where podman puts it.
        let rootless = "\(Self.user)/user.slice/libpod-\(Self.id).scope/container\n"
        #expect(ContainerIdentity.fromCgroup(Array(rootless.utf8))?.userManager == "user@1000.service")
        // The system's own container has none.
        let system = "0::/system.slice/docker-\(Self.id).scope\n"
        #expect(ContainerIdentity.fromCgroup(Array(system.utf8))?.userManager == nil)
    }

    /// The README's own rules must not silence a user's look-alikes (the attack of row 6),
    /// and a rule that names the user manager still can.
    @Test func systemRulesDoNotMatchAUsersNames() throws {
        var d = ProcessDetails(identity: ProcessIdentity(pid: 4242, startTime: 1), comm: "proxy")
        d.unit = ProcPidCgroup.unit("\(Self.user)/app.slice/legacy-proxy.service\n")
        #expect(!Rule(name: "bounded-pool", matchUnit: "legacy-proxy.service", ignore: true).matches(d))
        #expect(Rule(name: "users", matchUnit: "user@1000.service: legacy-proxy.service").matches(d))
        #expect(Rule(name: "any-user", matchUnit: "user@*.service: *").matches(d))
        d.container = ContainerIdentity.fromCgroup(Array("\(Self.user)/app.slice/docker-\(Self.id).scope\n".utf8))
        #expect(d.container != nil)
        #expect(!Rule(name: "docker", matchContainer: "docker:*").matches(d))
        #expect(Rule(name: "users-docker", matchContainer: "user@1000.service: docker:*").matches(d))
    }

    @Test func outputsSayWhoseContainerItIs() throws {
        var d = ProcessDetails(identity: ProcessIdentity(pid: 4242, startTime: 1), comm: "proxy")
        d.container = ContainerIdentity.fromCgroup(Array("\(Self.user)/app.slice/docker-\(Self.id).scope\n".utf8))
        d.unit = ProcPidCgroup.unit("\(Self.user)/app.slice/docker-\(Self.id).scope\n")
        #expect(d.whereItRuns == " (container user@1000.service: docker:3f2a1b4c5d6e)")
        let status = ProcessStatus(
            details: d, count: 1, peers: [], growthPerMinute: nil, oldestAge: 0, since: 0, predictedExhaustion: nil)
        let doc = StateDocument(
            statuses: [status], firing: [], total: 1, status: "x", daemonPID: 1, ticks: 1, wallTime: 0, interval: 5)
        let decoded = try StateDocument.decode(doc.json().renderedBytes())
        #expect(decoded.processes[0].container == "user@1000.service: docker:" + Self.id)
        #expect(StateDocument.table(decoded, age: 0).contains("user@1000.service: docker:3f2a1b4c5d6e"))
        let snapshot = Snapshot(
            source: .netlink, states: [.closeWait], sockets: [],
            processes: [ProcessEntry(details: d, inodes: [1], peers: [])], statistics: ScanStatistics())
        #expect(SnapshotReport.json(snapshot).rendered().contains("\"userManager\":\"user@1000.service\""))
    }

    /// Names below the boundary are the user's own bytes: escaped in the alert text, STATUS
    /// label, table and metrics, exact in the journal field.
    @Test func aUsersHostileNamesAreEscapedEverywhere() throws {
        let evil = "\(Self.user)/app.slice/ev\u{1b}[2J\u{7f}il.service\n"
        var d = ProcessDetails(
            identity: ProcessIdentity(pid: 4242, startTime: 1), comm: "proxy", fdOpen: 10, fdLimit: 1024)
        d.unit = ProcPidCgroup.unit(evil)
        #expect(d.unit == ByteString("user@1000.service: ev\u{1b}[2J\u{7f}il.service"))
        let container = "\(Self.user)/machine-\u{1b}]0;pwn\u{07}.scope\n"
        d.container = ContainerIdentity.fromCgroup(Array(container.utf8))
        #expect(d.container?.userManager == "user@1000.service")
        let status = ProcessStatus(
            details: d, count: 150, peers: [], growthPerMinute: nil, oldestAge: 0, since: 0, predictedExhaustion: nil)
        let entry = AlertMessage.entry(
            AlertEvent(
                kind: .crossed, reason: .count, level: .warning, process: status, total: 150,
                value: 150, threshold: 100, rule: "default"))
        for text in [
            entry.message, d.whereItRuns,
            Metrics.render(statuses: [status], firing: [], total: 150, health: Metrics.Health(), version: "t"),
        ] {
            #expect(
                !text.unicodeScalars.contains { $0 == "\u{1b}" || $0 == "\u{07}" || $0 == "\u{7f}" },
                "\(text.prefix(200))")
        }
        #expect(
            entry.fields.first { $0.0 == "CLOSEWAIT_UNIT" }?.1
                == ByteString("user@1000.service: ev\u{1b}[2J\u{7f}il.service"))
        let doc = StateDocument(
            statuses: [status], firing: [], total: 150, status: "x", daemonPID: 1, ticks: 1, wallTime: 0, interval: 5)
        let table = StateDocument.table(try StateDocument.decode(doc.json().renderedBytes()), age: 0)
        #expect(!table.unicodeScalars.contains { $0 == "\u{1b}" || $0 == "\u{07}" })
    }
}
