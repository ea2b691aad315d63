import Testing

@testable import CloseWaitCore

/// `[[action]]`: which alerts an action answers, its rails (cooldown per process and action,
/// max_per_hour for the daemon, at most `maxRunning` at once, dry_run), and what the command
/// and the journal get.
@Suite struct ActionPlannerTests {
    static func event(
        pid: Int32 = 4242, start: UInt64 = 9, reason: AlertReason = .fdExhaustion, level: AlertLevel = .critical,
        kind: AlertKind = .crossed, rule: String = "default", comm: ByteString = "java"
    ) -> AlertEvent {
        var d = ProcessDetails(
            identity: ProcessIdentity(pid: pid, startTime: start), comm: comm, unit: "orders.service", fdOpen: 900,
            fdLimit: 1024)
        d.innerPID = nil
        let status = ProcessStatus(
            details: d, count: 800, peers: [], growthPerMinute: 60, oldestAge: 30, since: 0, predictedExhaustion: 120)
        return AlertEvent(
            kind: kind, reason: reason, level: level, process: status, total: 800, value: 120, threshold: 900,
            rule: rule)
    }

    static func spec(_ name: String = "restart", dryRun: Bool = false, cooldown: Double = 600) -> ActionSpec {
        var s = ActionSpec(name: name, kind: .exec(["/usr/local/bin/page", "--critical"]))
        s.levels = [.critical]
        s.reasons = [.fdExhaustion]
        s.cooldown = cooldown
        s.dryRun = dryRun
        return s
    }

    @Test func onlyFiringPerProcessAlertsThatEveryFilterAdmits() {
        var s = Self.spec()
        #expect(s.answers(Self.event()))
        #expect(s.answers(Self.event(kind: .reminder)) && s.answers(Self.event(kind: .escalated)))
        #expect(!s.answers(Self.event(kind: .recovered)))
        #expect(!s.answers(Self.event(level: .warning)))
        #expect(!s.answers(Self.event(reason: .count)))
        var host = Self.event(reason: .total)
        host.process = nil
        s.reasons = []
        #expect(!s.answers(host))
        s.rules = ["orders"]
        #expect(!s.answers(Self.event()) && s.answers(Self.event(rule: "orders")))
        s.rules = []
        s.match = Rule(name: "m", matchUnit: "orders*.service")
        #expect(s.answers(Self.event()))
        s.match = Rule(name: "m", matchComm: "python*")
        #expect(!s.answers(Self.event()))
    }

    @Test func cooldownPerProcessAndActionThenTheHourlyCap() {
        var settings = ActionSettings()
        settings.specs = [Self.spec()]
        settings.maxPerHour = 3
        var planner = ActionPlanner(settings: settings)
        #expect(planner.plan([Self.event()], now: 0).map(\.decision) == [.run])
        // The same process again within the cooldown: held back, said.
        let again = planner.plan([Self.event(kind: .reminder)], now: 300)
        #expect(again.map(\.decision) == [.skipped("cooldown: ran 5min ago, again after 10min")])
        // Another process (a restarted leaker: new start time) is its own.
        #expect(planner.plan([Self.event(start: 10)], now: 301).map(\.decision) == [.run])
        #expect(planner.plan([Self.event()], now: 600).map(\.decision) == [.run])
        // Three started within the hour: the fourth waits for the hour to slide.
        #expect(
            planner.plan([Self.event(pid: 7)], now: 700).map(\.decision) == [
                .skipped("max_per_hour: 3 actions started in the last hour")
            ])
        #expect(planner.plan([Self.event(pid: 7)], now: 3601).map(\.decision) == [.run])
    }

    @Test func oneAnswerPerProcessATickAndRunningSlots() {
        var settings = ActionSettings()
        var any = Self.spec()
        any.levels = []
        any.reasons = []
        settings.specs = [any]
        var planner = ActionPlanner(settings: settings)
        let both = planner.plan([Self.event(reason: .count, level: .warning), Self.event()], now: 0)
        #expect(both.count == 1 && both[0].event.reason == .fdExhaustion)
        let busy = planner.plan([Self.event(pid: 8)], now: 1, running: ActionSettings.maxRunning)
        #expect(busy.map(\.decision) == [.skipped("\(ActionSettings.maxRunning) actions still running")])
    }

    @Test func aDryRunSaysWhatItWouldDoUnderTheSameRails() {
        var settings = ActionSettings()
        settings.specs = [Self.spec(dryRun: true)]
        var planner = ActionPlanner(settings: settings)
        let planned = planner.plan([Self.event()], now: 0)
        #expect(planned.map(\.decision) == [.dryRun])
        let entry = ActionMessage.before(planned[0])
        #expect(entry.messageID == MessageID.actionStarted)
        #expect(
            entry.message
                == "action \"restart\": exec /usr/local/bin/page --critical for java[4242] — critical fd-exhaustion (rule default): dry run, nothing done (dry_run = true)"
        )
        #expect(entry.field("CLOSEWAIT_ACTION_STATE") == "dry-run")
        #expect(entry.field("CLOSEWAIT_PID") == "4242" && entry.field("CLOSEWAIT_REASON") == "fd-exhaustion")
        #expect(planner.plan([Self.event()], now: 1).map(\.decision) != [.dryRun])
    }

    @Test func afterSaysHowItEndedWithTheOutputBounded() {
        let planned = ActionPlanner.Planned(spec: Self.spec(), event: Self.event(), decision: .run)
        let ok = ActionMessage.after(
            planned, outcome: .exited(0), seconds: 0.25, output: Array("done\n".utf8), outputCut: 0)
        #expect(ok.messageID == MessageID.actionFinished && ok.priority == .notice)
        #expect(ok.message == "action \"restart\" for java[4242] exited with status 0 after 250ms")
        #expect(ok.field("CLOSEWAIT_ACTION_EXIT_STATUS") == "0" && ok.field("CLOSEWAIT_ACTION_SECONDS") == "0.250")
        #expect(ok.field("CLOSEWAIT_ACTION_OUTPUT") == "done\n")
        let slow = ActionMessage.after(planned, outcome: .timedOut(30), seconds: 32, output: [], outputCut: 99)
        #expect(slow.priority == .warning && slow.field("CLOSEWAIT_ACTION_TIMEOUT") == "1")
        #expect(slow.message.contains("timed out after 30s and was killed") && slow.message.contains("99 more dropped"))
    }

    /// A hostile comm reaches the command's environment only escaped.
    @Test func theEnvironmentCarriesTheAlertEscaped() {
        let hostile = Self.event(comm: ByteString([0x6a, 0x0a, 0x1b, 0xff]))
        let env = ActionMessage.environment(ActionPlanner.Planned(spec: Self.spec(), event: hostile, decision: .run))
        #expect(env.contains("CLOSEWAIT_COMM=j\\n\\x1b\\xff"))
        #expect(env.contains("CLOSEWAIT_PID=4242") && env.contains("CLOSEWAIT_ACTION=restart"))
        #expect(env.contains("CLOSEWAIT_REASON=fd-exhaustion") && env.contains("CLOSEWAIT_LEVEL=critical"))
        #expect(env.first?.hasPrefix("PATH=") == true)
        #expect(env.allSatisfy { !$0.utf8.contains { $0 < 0x20 } })
        #expect(Set(env.map { $0.prefix { $0 != "=" } }).count == env.count)
    }

    @Test func configNamesEveryProblemWithItsKey() {
        let node = ConfigNode.table([
            "actions": .table(["max_per_hour": .int(0)]),
            "action": .array([
                .table(["name": .string("a"), "exec": .array([.string("page")])]),
                .table(["name": .string("b"), "exec": .string("/bin/page --now")]),
                .table(["name": .string("c"), "restart_unit": .bool(true)]),
                .table(["name": .string("d"), "exec": .array([.string("/bin/true")]), "level": .string("bad")]),
                .table(["name": .string("e")]),
                .table([
                    "name": .string("ok"), "exec": .array([.string("/bin/true"), .string("x")]),
                    "level": .string("critical"), "reason": .array([.string("fd-exhaustion"), .string("count")]),
                    "rule": .string("orders"), "match_unit": .string("orders*.service"), "cooldown": .string("30min"),
                    "dry_run": .bool(true), "timeout": .string("10s"),
                ]),
            ]),
        ])
        guard case let .failure(errors) = SettingsParser.parse(node, file: "f.toml", text: "") else {
            Issue.record("accepted")
            return
        }
        let text = errors.description
        #expect(text.contains("f.toml: actions.max_per_hour: 0 is out of range (1–3600)"))
        #expect(text.contains("action[1].exec: the command must be an absolute path (no PATH search), not \"page\""))
        #expect(text.contains("action[2].exec: must be a list"))
        #expect(
            text.contains(
                "action[3].match_unit: restart_unit needs match_unit naming the one service it restarts (match_unit = \"orders.service\")"
            ))
        #expect(text.contains("action[4].level: must be one of warning, critical, not \"bad\""))
        #expect(text.contains("action[5]: needs something to do"))
        #expect(!text.contains("action[6]"))
        let good = ConfigNode.table(["action": .array([Self.okTable])])
        let settings = try? SettingsParser.parse(good, file: "f", text: "").get()
        let spec = settings?.actions.specs.first
        #expect(spec?.kind == .exec(["/bin/true", "x"]) && spec?.levels == [.critical])
        #expect(spec?.reasons == [.fdExhaustion, .count] && spec?.rules == ["orders"])
        #expect(spec?.match?.matchUnit == "orders*.service" && spec?.cooldown == 1800 && spec?.dryRun == true)
        #expect(spec?.timeout == 10 && settings?.actions.maxPerHour == 6)
    }

    @Test func restartUnitNamesExactlyOneServiceAndDoesOneThing() {
        func problems(_ table: [String: ConfigNode]) -> String {
            var full = table
            full["name"] = .string("r")
            guard
                case let .failure(errors) = SettingsParser.parse(
                    .table(["action": .array([.table(full)])]), file: "f", text: "")
            else { return "" }
            return errors.description
        }
        let restart = ConfigNode.bool(true)
        #expect(
            problems(["restart_unit": restart, "match_unit": .string("orders*.service")]).contains(
                "action[1].match_unit: restart_unit restarts exactly one .service unit written out (no glob, no scope), not \"orders*.service\""
            ))
        #expect(problems(["restart_unit": restart, "match_unit": .string("session-3.scope")]).contains("no scope"))
        #expect(
            problems(["restart_unit": restart, "match_unit": .string("closewaitd.service")]).contains(
                "action[1].match_unit: closewaitd never restarts its own unit"))
        #expect(
            problems([
                "restart_unit": restart, "match_unit": .string("a.service"), "exec": .array([.string("/bin/true")]),
            ])
            .contains("action[1]: does one thing: exec, restart_unit or destroy_sockets, not more"))
        #expect(problems(["restart_unit": .bool(false)]).contains("action[1]: restart_unit = false does nothing"))
        let good = ConfigNode.table([
            "action": .array([
                .table(["name": .string("r"), "restart_unit": restart, "match_unit": .string("worker@2.service")])
            ])
        ])
        let spec = try? SettingsParser.parse(good, file: "f", text: "").get().actions.specs.first
        #expect(spec?.kind == .restartUnit("worker@2.service") && spec?.unit == "worker@2.service")
        #expect(spec.map(ActionMessage.what) == "restart its unit worker@2.service")
    }

    /// A restart makes a new process: its cooldown is the unit's, or a leak that comes back
    /// would restart it every time. Two leakers in one unit: one restart.
    @Test func aRestartsCooldownIsTheUnitsAcrossItsProcesses() {
        var settings = ActionSettings()
        var spec = Self.spec()
        spec.kind = .restartUnit("orders.service")
        settings.specs = [spec]
        var planner = ActionPlanner(settings: settings)
        #expect(planner.plan([Self.event(), Self.event(pid: 4243)], now: 0).map(\.decision) == [.run])
        planner.keep(only: [])
        #expect(
            planner.plan([Self.event(pid: 5000, start: 77)], now: 60).map(\.decision) == [
                .skipped("cooldown: ran 1min ago, again after 10min")
            ])
        #expect(planner.plan([Self.event(pid: 5000, start: 77)], now: 600).map(\.decision) == [.run])
    }

    @Test func restartOutcomesSayWhatHappened() {
        let planned = ActionPlanner.Planned(spec: Self.spec(), event: Self.event(), decision: .run)
        let done = ActionMessage.after(
            planned,
            outcome: .restarted(
                unit: "orders.service", why: "it is the main process of orders.service", mainPIDBefore: 4242,
                mainPIDAfter: 5000, state: "active (running)", finished: true), seconds: 1.5, output: [], outputCut: 0)
        #expect(
            done.message
                == "action \"restart\" for java[4242] restarted orders.service (it is the main process of orders.service): main pid 4242 → 5000, now active (running) after 2s"
        )
        #expect(done.priority == .notice && done.field("CLOSEWAIT_ACTION_RESULT") == "success")
        #expect(
            done.field("CLOSEWAIT_ACTION_UNIT") == "orders.service"
                && done.field("CLOSEWAIT_ACTION_MAIN_PID_AFTER") == "5000")
        let failed = ActionMessage.after(
            planned,
            outcome: .restarted(
                unit: "orders.service", why: "x", mainPIDBefore: 1, mainPIDAfter: 0, state: "failed (failed)",
                finished: true),
            seconds: 1, output: [], outputCut: 0)
        #expect(failed.priority == .warning && failed.field("CLOSEWAIT_ACTION_RESULT") == "failure")
        let refused = ActionMessage.after(
            planned, outcome: .refused("it runs outside any systemd unit"), seconds: 0, output: [], outputCut: 0)
        #expect(refused.message.contains("did not restart: it runs outside any systemd unit"))
        #expect(
            refused.field("CLOSEWAIT_ACTION_ERROR") == "it runs outside any systemd unit"
                && refused.priority == .warning)
        let dry = ActionMessage.after(
            planned, outcome: .wouldRestart(unit: "orders.service", why: "w"), seconds: 0, output: [], outputCut: 0)
        #expect(dry.message.contains("would restart orders.service (w); dry run, nothing done"))
    }

    static let okTable = ConfigNode.table([
        "name": .string("ok"), "exec": .array([.string("/bin/true"), .string("x")]), "level": .string("critical"),
        "reason": .array([.string("fd-exhaustion"), .string("count")]), "rule": .string("orders"),
        "match_unit": .string("orders*.service"), "cooldown": .string("30min"), "dry_run": .bool(true),
        "timeout": .string("10s"),
    ])
}
