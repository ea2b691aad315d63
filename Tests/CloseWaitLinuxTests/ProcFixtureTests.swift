import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing

/// The readers and the collector against a committed /proc tree (Fixtures/proc): pid 4242
/// holds three CLOSE_WAIT sockets, pid 77 shares one of them, pid 4243 has no fd directory
/// (it exited mid-scan).
@Suite struct ProcFixtureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/proc"
    ).path

    @Test func readerGathersEveryDetail() throws {
        let reader = ProcessReader(proc: ProcFS(root: Self.root))
        let details = try reader.details(pid: 4242, fdOpen: 4)
        #expect(details.identity == ProcessIdentity(pid: 4242, startTime: 987654))
        #expect(details.comm == "java")
        #expect(details.exe == "/usr/lib/jvm/bin/java")
        #expect(details.cmdline == ["java", "-jar", "orders.jar"])
        #expect(details.uid == 1000)
        #expect(details.unit == "orders.service")
        #expect(details.fdLimit == 1024)
        #expect(try reader.details(pid: 77, fdOpen: 2).fdLimit == nil)  // unlimited
    }

    @Test func scannerFindsWantedSocketsOnly() throws {
        let scanner = FdScanner(proc: ProcFS(root: Self.root))
        let fds = try scanner.scan(pid: 4242, wanted: [20140, 20144])
        #expect(fds.fdCount == 4)
        #expect(fds.sockets.map(\.inode).sorted() == [20140, 20144])
        #expect(fds.sockets.first { $0.inode == 20140 }?.fd == 3)
        #expect(throws: Errno.self) { try scanner.scan(pid: 4243, wanted: nil) }
        #expect(throws: Errno.self) { try scanner.scan(pid: 99999, wanted: nil) }
    }

    /// The bounded, streamed read of a namespace's table: chunk sizes and limits do not change
    /// what is found before the limit, and a cut is said (issue 17, row 3).
    @Test func boundedReadKeepsWhatCameBeforeTheLimit() throws {
        let sampler = KernelSampler(choice: .proc, proc: ProcFS(root: Self.root))
        let whole = try sampler.sampleProcBounded(
            [.closeWait], proc: ProcFS(root: Self.root), limit: .max, deadline: nil)
        #expect(whole.cut == nil)
        #expect(whole.records.count == 6)
        let cut = try sampler.sampleProcBounded([.closeWait], proc: ProcFS(root: Self.root), limit: 600, deadline: nil)
        #expect(cut.cut?.contains("net/tcp larger than") == true)
        #expect(cut.records.count >= 1 && cut.records.count < whole.records.count, "\(cut.records)")
        let exact = try sampler.sampleProcBounded(
            [.closeWait], proc: ProcFS(root: Self.root), limit: 1576, deadline: nil)
        #expect(exact.cut == nil, "a file ending exactly at the limit is whole")
    }

    @Test func collectorJoinsTheFixtureTree() throws {
        var collector = SnapshotCollector(source: .proc, procRoot: Self.root)
        let result = try collector.collect(states: [.closeWait])
        let snapshot = result.snapshot
        #expect(snapshot.source == .proc)
        #expect(snapshot.total == 6)
        #expect(snapshot.processes.map(\.details.pid) == [4242, 77])
        #expect(snapshot.processes[0].inodes == [20140, 20141, 20144])
        #expect(snapshot.sockets.first { $0.record.inode == 20144 }?.owners == [77, 4242])
        #expect(snapshot.statistics.vanished == 1)  // 4243 has no fd directory
        #expect(snapshot.statistics.processesScanned == 3)
        // 20142, 20143: no fd names them; inode 0: backlog.
        #expect(snapshot.sockets.filter { $0.unownedReason == .noOwnerFound }.count == 2)
        #expect(snapshot.sockets.filter { $0.unownedReason == .listenBacklog }.count == 1)
    }

    @Test func brokenProcNetTCPNamesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("net"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "  sl  local_address rem_address   st\n   0: 0100007F:1F90 garbage 08\n".write(
            to: dir.appendingPathComponent("net/tcp"), atomically: true, encoding: .utf8)
        var sampler = KernelSampler(choice: .proc, proc: ProcFS(root: dir.path))
        #expect { try sampler.sample(states: [.closeWait]) } throws: { error in
            "\(error)".contains("net/tcp: line 2: bad columns")
        }
    }
}
