import CLinuxShim
import CloseWaitCore
import Glibc
import Synchronization

/// ActionRunner runs an action's command on a thread of its own, so no tick ever waits for it:
/// argv as configured (no shell), the alert in CLOSEWAIT_* variables (escaped), stdin from
/// /dev/null, no fd of the daemon's inherited, its own session; stdout and stderr captured up
/// to `outputLimit` bytes (the rest read and dropped, so a flood cannot block it); killed at its
/// timeout (SIGTERM to its process group, SIGKILL 2 s later). How it ended is journaled by
/// `report` from that thread.
public final class ActionRunner: Sendable {
    public static let outputLimit = 16 << 10
    let report: @Sendable (JournalEntry) -> Void
    /// restart_unit (D-Bus lives above this module): checks, and restarts unless a dry run.
    let restart: @Sendable (ActionPlanner.Planned) -> Result
    let active = Mutex(0)

    public init(
        report: @escaping @Sendable (JournalEntry) -> Void,
        restart: @escaping @Sendable (ActionPlanner.Planned) -> Result = { _ in
            Result(outcome: .busError("no system bus in this build"), seconds: 0, output: [], dropped: 0)
        }
    ) {
        self.report = report
        self.restart = restart
    }

    /// Actions started and not finished.
    public var running: Int { active.withLock { $0 } }

    /// Starts `planned` (a `.run` decision, or a restart's `.dryRun`, which checks what it would
    /// restart) and returns at once.
    public func start(_ planned: ActionPlanner.Planned) {
        let environment = ActionMessage.environment(planned)
        let timeout = planned.spec.timeout
        active.withLock { $0 += 1 }
        let work: @Sendable () -> Void = { [self] in
            let result: Result
            switch planned.spec.kind {
            case let .exec(argv): result = Self.run(argv: argv, environment: environment, timeout: timeout)
            case .destroySockets: result = Self.destroy(planned)
            case .restartUnit: result = restart(planned)
            }
            report(
                ActionMessage.after(
                    planned, outcome: result.outcome, seconds: result.seconds, output: result.output,
                    outputCut: result.dropped))
            active.withLock { $0 -= 1 }
        }
        if let thread = Threads.start(work) {
            pthread_detach(thread)
        } else {
            active.withLock { $0 -= 1 }
            report(
                ActionMessage.after(
                    planned, outcome: .failedToStart("no thread could be made (TasksMax or pids.max reached?)"),
                    seconds: 0, output: [], outputCut: 0))
        }
    }

    public struct Result: Sendable {
        public var outcome: ActionMessage.Outcome
        public var seconds: Double
        public var output: [UInt8]
        /// Output bytes past `outputLimit`, read and dropped.
        public var dropped: Int

        public init(outcome: ActionMessage.Outcome, seconds: Double, output: [UInt8] = [], dropped: Int = 0) {
            self.outcome = outcome
            self.seconds = seconds
            self.output = output
            self.dropped = dropped
        }
    }

    /// Runs the command to its end or its timeout, on the calling thread.
    public static func run(argv: [String], environment: [String], timeout: Double) -> Result {
        let started = monotonicNow()
        var output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard cw_pipe_cloexec(&output) == 0 else { return failed("pipe2", errno, started) }
        guard cw_pipe_cloexec(&errors) == 0 else {
            let code = errno
            close(output[0]); close(output[1])
            return failed("pipe2", code, started)
        }
        let pid = withCStrings(argv) { args in
            withCStrings(environment) { env in cw_spawn(args, env, output[1], errors[1]) }
        }
        let spawnErrno = errno
        close(output[1]); close(errors[1])
        defer { close(output[0]) }
        guard pid > 0 else { close(errors[0]); return failed("fork", spawnErrno, started) }
        // The child writes its exec errno to the error pipe; EOF means exec succeeded.
        var execErrno: Int32 = 0
        let n = read(errors[0], &execErrno, MemoryLayout<Int32>.size)
        close(errors[0])
        var captured = [UInt8]()
        var dropped = 0
        var outcome: ActionMessage.Outcome?
        if n == MemoryLayout<Int32>.size {
            outcome = .failedToStart(String(cString: strerror(execErrno)) + " (" + Escape.line(argv[0]) + ")")
        }
        let deadline = started + timeout
        var killedAt: Double?
        /// Past the deadline: SIGTERM to its process group; 2 s later SIGKILL. True once killed.
        func escalate(_ now: Double) -> Bool {
            if killedAt == nil, now >= deadline {
                kill(-pid, SIGTERM)
                kill(pid, SIGTERM)
                killedAt = now
            }
            guard let killedAt, now >= killedAt + 2 else { return false }
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            return true
        }
        var open = true
        var buffer = [UInt8](repeating: 0, count: 4096)
        while open {
            let now = monotonicNow()
            if escalate(now) { break }
            let wait = killedAt.map { $0 + 2 - now } ?? (deadline - now)
            var pfd = pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(1, min(wait, 1) * 1000)))
            if ready < 0 && errno != EINTR { break }
            guard ready > 0 else { continue }
            let got = buffer.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
            if got <= 0 {
                if got < 0 && errno == EINTR { continue }
                open = false
                continue
            }
            let room = max(0, outputLimit - captured.count)
            captured += buffer[0..<min(room, got)]
            dropped += max(0, got - room)
        }
        // The output closed (or it was killed): reap it; a command that closed its output but
        // lives on is still held to its deadline.
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { break }
            _ = escalate(monotonicNow())
            usleep(10_000)
        }
        // Whatever it left behind in its session goes too.
        kill(-pid, SIGKILL)
        if outcome == nil {
            if killedAt != nil {
                outcome = .timedOut(timeout)
            } else if status & 0x7f == 0 {
                outcome = .exited((status >> 8) & 0xff)
            } else {
                outcome = .signalled(status & 0x7f)
            }
        }
        return Result(outcome: outcome!, seconds: monotonicNow() - started, output: captured, dropped: dropped)
    }

    /// destroy_sockets: the alerted process's CLOSE_WAIT sockets to its top peers, nothing else.
    static func destroy(_ planned: ActionPlanner.Planned) -> Result {
        let started = monotonicNow()
        guard let process = planned.event.process else {
            return Result(outcome: .destroyed(count: 0, refused: [:], gone: 0), seconds: 0, output: [], dropped: 0)
        }
        if let netns = process.details.netns {
            return Result(
                outcome: .failedToStart(
                    "it lives in network namespace \(netns); SOCK_DESTROY acts only in the daemon's own"),
                seconds: monotonicNow() - started, output: [], dropped: 0)
        }
        do {
            let done = try SocketDestroyer().destroy(
                process.details.identity, peers: process.peers.map(\.endpoint))
            return Result(
                outcome: .destroyed(count: done.destroyed, refused: done.refused, gone: done.gone),
                seconds: monotonicNow() - started, output: [], dropped: 0)
        } catch {
            return Result(
                outcome: .failedToStart("\(error)"), seconds: monotonicNow() - started, output: [], dropped: 0)
        }
    }

    static func failed(_ call: String, _ code: Int32, _ started: Double) -> Result {
        Result(
            outcome: .failedToStart("\(call): " + String(cString: strerror(code))), seconds: monotonicNow() - started,
            output: [], dropped: 0)
    }

    /// A NULL-terminated array of C strings valid for the duration of `body`.
    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
