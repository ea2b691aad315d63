@testable import CloseWaitCore
import Testing

@Suite struct ProcPidTests {
    @Test func statWithSpacesAndParensInComm() throws {
        let text =
            "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 987654 12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
        let stat = try ProcPidStat.parse(text)
        var expected = ProcPidStat(pid: 4242, comm: "my (odd) app", startTime: 987654)
        expected.parentPID = 1
        #expect(stat == expected)
        #expect(
            try ProcPidStat.parse(
                "4242 (my (odd) app) Z 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 987654 1 2\n"
            ).exited, "a zombie has exited")
        #expect(!stat.exited)
    }

    @Test func statTruncatedIsRejected() {
        #expect(throws: ProcFileError.malformed(line: 1, key: "starttime", detail: "field 22 missing or not a number"))
        {
            try ProcPidStat.parse("1 (init) S 0 1 1")
        }
        #expect(throws: ProcFileError.self) { try ProcPidStat.parse("garbage") }
    }

    @Test func uidFromStatus() throws {
        #expect(try ProcPidStatus.parseUID("Name:\tjava\nUid:\t1000\t1000\t1000\t1000\nGid:\t1\n") == 1000)
        #expect(throws: ProcFileError.self) { try ProcPidStatus.parseUID("Name:\tjava\n") }
        #expect(
            ProcPidStatus.effectiveCapabilities(Array("Name:\tx\nCapEff:\t000001c000000000\n".utf8)) == 0x1c0_0000_0000)
        #expect(ProcPidStatus.effectiveCapabilities(Array("CapEff:\tzz\n".utf8)) == nil)
    }

    @Test(
        arguments: [
            ("0::/system.slice/orders.service\n", "orders.service"),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n",
                "user@1000.service: foo.service"
            ),
            ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
            ("0::/\n", nil),
            ("12:pids:/system.slice/a.service\n1:name=systemd:/system.slice/nginx.service\n", "nginx.service"),
            ("0::/system.slice/docker-1234.scope/inner\n", "docker-1234.scope"),
        ] as [(String, String?)])
    func unitFromCgroup(text: String, unit: String?) {
        #expect(ProcPidCgroup.unit(text) == unit.map { ByteString($0) })
    }

    @Test func limitsSoftOpenFiles() throws {
        let limits = """
            Limit                     Soft Limit           Hard Limit           Units
            Max cpu time              unlimited            unlimited            seconds
            Max open files            1024                 524288               files
            """
        #expect(try ProcPidLimits.softOpenFiles(limits) == 1024)
        #expect(
            try ProcPidLimits.softOpenFiles("Max open files            unlimited            unlimited            files")
                == nil)
        #expect(
            throws: ProcFileError.malformed(line: 1, key: "Max open files", detail: "soft limit lots is not a number")
        ) {
            try ProcPidLimits.softOpenFiles("Max open files            lots            unlimited            files")
        }
    }

    @Test func fdLinkSocketInode() {
        #expect(FdLink.socketInode("socket:[12345]") == 12345)
        #expect(FdLink.socketInode("socket:[]") == nil)
        #expect(FdLink.socketInode("pipe:[12345]") == nil)
        #expect(FdLink.socketInode("/dev/null") == nil)
        #expect(FdLink.socketInode("socket:[12a]") == nil)
        #expect(FdLink.socketInode("socket:[99999999999999999999999]") == nil)
    }
}
