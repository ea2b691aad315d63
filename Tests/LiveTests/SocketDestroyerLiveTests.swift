import CloseWaitCore
import CloseWaitLinux
import Foundation
import Testing
import WorkloadSupport

/// SOCK_DESTROY on real loopback sockets: exactly one process's CLOSE_WAIT sockets to the
/// peers go, another process's to the same peers stay, a stale identity touches nothing.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct SocketDestroyerLiveTests {
    @Test func onlyThatProcessesCloseWaitSocketsToThePeerGo() throws {
        let leak = try Workload(["--processes", "2", "--v4", "3", "--v6", "2"])
        defer { leak.stop() }
        let (victim, bystander) = (leak.holders[0], leak.holders[1])
        let startTime = try ProcPidStat.parse(ProcFS().read("\(victim)/stat", limit: 4096)).startTime
        let peers = [
            Endpoint(address: .v4(127, 0, 0, 1), port: UInt16(leak.port4)),
            Endpoint(address: .v6(high: 0, low: 1), port: UInt16(leak.port6)),
        ]
        let result = try SocketDestroyer().destroy(ProcessIdentity(pid: victim, startTime: startTime), peers: peers)
        #expect(result.destroyed == 5 && result.refusedCount == 0, "\(result)")
        let left = try ss()
        #expect(!left.contains("pid=\(victim),"), "\(left)")
        #expect(left.components(separatedBy: "pid=\(bystander),").count - 1 == 5, "\(left)")
        // A pid whose start time is not the one alerted on is never touched.
        let stale = try SocketDestroyer().destroy(ProcessIdentity(pid: bystander, startTime: 1), peers: peers)
        #expect(stale.destroyed == 0)
        #expect(try ss().components(separatedBy: "pid=\(bystander),").count - 1 == 5)
    }

    func ss() throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        p.arguments = ["-tanpH", "state", "close-wait"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
