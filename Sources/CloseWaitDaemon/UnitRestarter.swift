import CloseWaitCore
import CloseWaitLinux
import CloseWaitSystemd
import Glibc

/// UnitRestarter carries out `restart_unit` on the action's own thread: it reads the facts
/// `RestartCheck` decides on — the leaker's cgroup and parents from /proc, the unit systemd
/// says holds its pid and that unit's `MainPID`, then the pid's start time again (a pid reused
/// meanwhile is refused) — and, unless it is a dry run, asks systemd to restart the unit
/// (`RestartUnit`, mode `replace`) and waits for the job at most the action's `timeout`.
/// polkit decides whether closewaitd's user may (`closewaitd polkit-rule`).
enum UnitRestarter {
    static let unitInterface = "org.freedesktop.systemd1.Unit"
    static let serviceInterface = "org.freedesktop.systemd1.Service"

    @Sendable static func run(_ planned: ActionPlanner.Planned) -> ActionRunner.Result {
        let started = monotonicNow()
        func done(_ outcome: ActionMessage.Outcome) -> ActionRunner.Result {
            ActionRunner.Result(outcome: outcome, seconds: monotonicNow() - started)
        }
        guard let unit = planned.spec.unit, let process = planned.event.process else {
            return done(.refused("no process to restart the unit of"))
        }
        let identity = process.details.identity
        let proc = ProcFS()
        let gone = ActionMessage.Outcome.refused("the process has exited (or its pid is another process's now)")
        guard proc.isStill(identity) else { return done(gone) }
        do {
            let bus = try SystemBus(callTimeout: min(planned.spec.timeout, 10))
            guard let (path, id) = try bus.unit(pid: identity.pid) else {
                return done(.refused("it runs outside any systemd unit"))
            }
            // Our own unit must be known (or be none) to be told apart: an error here refuses.
            let own = try bus.unit(pid: getpid())?.id
            let mainPID = id.hasSuffix(".service") ? try bus.uint32(path, serviceInterface, "MainPID") : 0
            let cgroup = (try? proc.read("\(identity.pid)/cgroup", limit: 65536)).flatMap { ProcPidCgroup.unit($0) }
            let ancestors = Self.ancestors(of: identity.pid, proc)
            guard proc.isStill(identity) else { return done(gone) }
            let facts = RestartCheck.Facts(
                pid: identity.pid, cgroupUnit: cgroup, systemdUnit: id, ownUnit: own, mainPID: mainPID,
                ancestors: ancestors)
            let why: String
            switch RestartCheck.decide(facts, configured: unit) {
            case .refused(let reason): return done(.refused(reason))
            case .allowed(let reason): why = reason
            }
            if planned.decision == .dryRun { return done(.wouldRestart(unit: id, why: why)) }
            let job = try bus.restart(id)
            var finished = false
            let deadline = started + planned.spec.timeout
            while true {
                if try !bus.jobExists(job) { finished = true; break }
                if monotonicNow() >= deadline { break }
                usleep(50_000)
            }
            let state =
                try bus.string(path, unitInterface, "ActiveState") + " ("
                + bus.string(path, unitInterface, "SubState") + ")"
            let after = try bus.uint32(path, serviceInterface, "MainPID")
            return done(
                .restarted(
                    unit: id, why: why, mainPIDBefore: mainPID, mainPIDAfter: after, state: state, finished: finished))
        } catch {
            return done(.busError("\(error)" + hint(error)))
        }
    }

    /// What to do about the two refusals an installation can fix.
    static func hint(_ error: SystemBus.Failure) -> String {
        if error.isAccessDenied {
            return
                " (polkit does not let closewaitd's user restart it: write the rule, closewaitd polkit-rule > \(PolkitRule.path))"
        }
        if error.name == "System.Error.ENOTCONN" || error.name == "System.Error.ECONNRESET" {
            return
                " (the system bus refused the connection: dbus-daemon cannot resolve a dynamic user; create the static user closewaitd with systemd-sysusers closewaitd.conf)"
        }
        return ""
    }

    /// The parents of `pid`, nearest first, up to init (at most 512: a loop cannot hold it).
    static func ancestors(of pid: Int32, _ proc: ProcFS) -> [Int32] {
        var out = [Int32]()
        var current = pid
        while out.count < 512, let parent = try? proc.stat(pid: current).parentPID, parent > 0 {
            out.append(parent)
            if parent == 1 { break }
            current = parent
        }
        return out
    }
}
