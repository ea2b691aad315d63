import Testing

@testable import CloseWaitCore

/// restart_unit restarts a unit only when it is aimed at the leaker: every refusal as a value.
@Suite struct RestartCheckTests {
    static func facts(
        pid: Int32 = 4242, cgroup: ByteString? = "orders.service", unit: String = "orders.service",
        own: String? = "closewaitd.service", main: UInt32 = 4242, ancestors: [Int32] = [1]
    ) -> RestartCheck.Facts {
        RestartCheck.Facts(
            pid: pid, cgroupUnit: cgroup, systemdUnit: unit, ownUnit: own, mainPID: main, ancestors: ancestors)
    }

    @Test func theMainProcessOrItsAncestorIsAllowed() {
        #expect(
            RestartCheck.decide(Self.facts(), configured: "orders.service")
                == .allowed("it is the main process of orders.service"))
        #expect(
            RestartCheck.decide(Self.facts(main: 100, ancestors: [100, 1]), configured: "orders.service")
                == .allowed("the main process of orders.service, pid 100, is its parent"))
        #expect(
            RestartCheck.decide(Self.facts(main: 100, ancestors: [300, 200, 100, 1]), configured: "orders.service")
                == .allowed("the main process of orders.service, pid 100, is its ancestor 3 generations up"))
    }

    @Test func everythingElseIsRefusedWithWhy() {
        func refusal(_ f: RestartCheck.Facts, _ configured: String = "orders.service") -> String? {
            if case let .refused(why) = RestartCheck.decide(f, configured: configured) { why } else { nil }
        }
        #expect(refusal(Self.facts(cgroup: nil)) == "it runs outside any systemd unit")
        // A user manager's service: the system manager would restart the whole user@1000.service.
        #expect(
            refusal(Self.facts(cgroup: "user@1000.service: orders.service", unit: "user@1000.service"))
                == "its cgroup names user@1000.service: orders.service but systemd says it belongs to user@1000.service: restarting that would not be aimed at it alone"
        )
        #expect(
            refusal(Self.facts(cgroup: "session-3.scope", unit: "session-3.scope"))
                == "session-3.scope is not a service: only .service units are restarted")
        #expect(
            refusal(Self.facts(cgroup: "closewaitd.service", unit: "closewaitd.service"), "closewaitd.service")
                == "closewaitd.service is closewaitd's own unit")
        #expect(
            refusal(Self.facts(cgroup: "billing.service", unit: "billing.service"))
                == "it belongs to billing.service, not to orders.service, the unit this action restarts")
        #expect(
            refusal(Self.facts(main: 0))
                == "orders.service has no main process (a oneshot, or a process systemd does not follow)")
        // A sibling in the same cgroup (a helper the main process did not start).
        #expect(
            refusal(Self.facts(main: 100, ancestors: [1]))
                == "the main process of orders.service is pid 100, neither it nor one of its ancestors: restarting the unit would not be aimed at the leaker"
        )
        // A hostile unit name from a cgroup is escaped where it is said.
        #expect(refusal(Self.facts(cgroup: "x\n.service", unit: "orders.service"))?.contains("x\\n.service") == true)
    }

    @Test func serviceNamesAreWrittenOut() {
        #expect(RestartCheck.isServiceName("orders.service") && RestartCheck.isServiceName("worker@2.service"))
        #expect(RestartCheck.isServiceName("a\\x2db.service"))
        for bad in [
            "orders", ".service", "orders*.service", "a b.service", "@x.service", "a@b@c.service", "x.scope",
            "\"x\".service", String(repeating: "a", count: 250) + ".service",
        ] {
            #expect(!RestartCheck.isServiceName(bad), "\(bad)")
        }
    }

    @Test func thePolkitRuleAllowsRestartOfTheNamedUnitsOnly() {
        let rule = PolkitRule.render(units: ["orders.service", "a\\x2db.service"])
        #expect(rule.contains(#"var units = ["a\\x2db.service", "orders.service"];"#))
        #expect(rule.contains(#"action.id == "org.freedesktop.systemd1.manage-units""#))
        #expect(
            rule.contains(#"subject.user == "closewaitd""#) && rule.contains(#"action.lookup("verb") == "restart""#))
        #expect(!rule.contains("\"start\"") && rule.hasSuffix("});\n"))
    }
}
