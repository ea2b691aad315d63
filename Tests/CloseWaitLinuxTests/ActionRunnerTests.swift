import CloseWaitCore
import CloseWaitLinux
import Testing

/// Real commands through the runner: what they get (argv, environment, no fd of ours), and
/// what it does to one that hangs, floods its output or cannot start.
@Suite struct ActionRunnerTests {
    @Test func theCommandGetsItsArgvAndEnvironmentAndNoInheritedFds() {
        let result = ActionRunner.run(
            argv: [
                "/bin/sh", "-c", "echo \"$1 $CLOSEWAIT_PID\"; ls /proc/self/fd | sort -n | tr '\\n' ' '", "sh", "a b",
            ],
            environment: ["PATH=/usr/bin:/bin", "CLOSEWAIT_PID=4242"], timeout: 10)
        #expect(result.outcome == .exited(0))
        let out = String(decoding: result.output, as: UTF8.self)
        #expect(out.hasPrefix("a b 4242\n"), "\(out)")
        // 0, 1, 2 and the one `ls` opens for /proc/self/fd: nothing of the test process's.
        #expect(out.hasSuffix("\n0 1 2 3 "), "\(out)")
    }

    @Test func exitStatusAndSignalAreTold() {
        #expect(
            ActionRunner.run(argv: ["/bin/sh", "-c", "exit 3"], environment: [], timeout: 10).outcome == .exited(3))
        #expect(
            ActionRunner.run(argv: ["/bin/sh", "-c", "kill -9 $$"], environment: [], timeout: 10).outcome
                == .signalled(9))
        let missing = ActionRunner.run(argv: ["/nonexistent/page"], environment: [], timeout: 10)
        #expect(missing.outcome == .failedToStart("No such file or directory (/nonexistent/page)"))
    }

    /// A command that hangs (and ignores SIGTERM, with a child of its own) is killed, group
    /// and all, 2 s after its timeout.
    @Test func aHangingCommandIsKilledAtItsTimeout() {
        let result = ActionRunner.run(
            argv: ["/bin/sh", "-c", "trap '' TERM; sleep 60 & sleep 60"], environment: [], timeout: 0.5)
        #expect(result.outcome == .timedOut(0.5))
        #expect(result.seconds >= 0.5 && result.seconds < 10, "\(result.seconds)")
    }

    @Test func aFloodIsCapturedUpToTheLimitAndTheRestDropped() {
        let result = ActionRunner.run(
            argv: ["/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x"], environment: [], timeout: 20)
        #expect(result.outcome == .exited(0))
        #expect(result.output.count == ActionRunner.outputLimit)
        #expect(result.dropped == 1_000_000 - ActionRunner.outputLimit)
    }
}
