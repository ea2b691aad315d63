/// RestartCheck decides whether `restart_unit` may restart the unit of an alerted process, from
/// facts the daemon reads just before (pure, so every refusal is tested as a value). A restart
/// is aimed at the leaker only when all of these hold:
///
/// 1. its cgroup names a unit, and systemd (`GetUnitByPID`) names the same one: a process in
///    a delegated subtree (a user manager's, a container's) reads as `user@1000.service: x`
///    and is refused, since the system manager would restart the whole subtree;
/// 2. that unit is a `.service` (a scope is a group systemd did not start and cannot restart);
/// 3. it is not closewaitd's own unit;
/// 4. it is the unit the action names (`match_unit`, which the polkit rule allows);
/// 5. the unit's `MainPID` is the leaker itself or one of its ancestors (walked by the parent
///    pids in /proc): restarting the unit then ends the leaker and whoever started it, not
///    a sibling that merely shares its cgroup (a helper, a sidecar's process, a `KillMode=none`
///    leftover) — and a unit with no main process is refused.
public enum RestartCheck {
    public struct Facts: Equatable, Sendable {
        public var pid: Int32
        /// The unit from its /proc/PID/cgroup now (`ProcPidCgroup.unit`); nil outside systemd.
        public var cgroupUnit: ByteString?
        /// The unit systemd says the pid belongs to (its `Id`).
        public var systemdUnit: String
        /// closewaitd's own unit, nil when it runs outside one.
        public var ownUnit: String?
        /// The unit's `MainPID`; 0 when it has none.
        public var mainPID: UInt32
        /// The leaker's parents, nearest first, up to init.
        public var ancestors: [Int32]

        public init(
            pid: Int32, cgroupUnit: ByteString?, systemdUnit: String, ownUnit: String?, mainPID: UInt32,
            ancestors: [Int32]
        ) {
            self.pid = pid
            self.cgroupUnit = cgroupUnit
            self.systemdUnit = systemdUnit
            self.ownUnit = ownUnit
            self.mainPID = mainPID
            self.ancestors = ancestors
        }
    }

    public enum Verdict: Equatable, Sendable {
        /// Why the restart is aimed at the leaker (`it is the main process of orders.service`).
        case allowed(String)
        case refused(String)
    }

    /// Whether the action that restarts `configured` may restart the leaker's unit.
    public static func decide(_ facts: Facts, configured: String) -> Verdict {
        let unit = Escape.line(facts.systemdUnit)
        guard let cgroupUnit = facts.cgroupUnit else { return .refused("it runs outside any systemd unit") }
        guard cgroupUnit == ByteString(facts.systemdUnit) else {
            return .refused(
                "its cgroup names \(cgroupUnit.escaped) but systemd says it belongs to \(unit): "
                    + "restarting that would not be aimed at it alone")
        }
        guard facts.systemdUnit.hasSuffix(".service") else {
            return .refused("\(unit) is not a service: only .service units are restarted")
        }
        if facts.systemdUnit == facts.ownUnit { return .refused("\(unit) is closewaitd's own unit") }
        guard facts.systemdUnit == configured else {
            return .refused("it belongs to \(unit), not to \(Escape.line(configured)), the unit this action restarts")
        }
        guard facts.mainPID != 0 else {
            return .refused("\(unit) has no main process (a oneshot, or a process systemd does not follow)")
        }
        if facts.mainPID == UInt32(bitPattern: facts.pid) { return .allowed("it is the main process of \(unit)") }
        if let level = facts.ancestors.firstIndex(of: Int32(bitPattern: facts.mainPID)) {
            return .allowed(
                "the main process of \(unit), pid \(facts.mainPID), is its "
                    + (level == 0 ? "parent" : "ancestor \(level + 1) generations up"))
        }
        return .refused(
            "the main process of \(unit) is pid \(facts.mainPID), neither it nor one of its ancestors: "
                + "restarting the unit would not be aimed at the leaker")
    }

    /// Whether `name` is a service unit name systemd would accept, written out exactly (no
    /// glob): 1–255 bytes of `[A-Za-z0-9:_.\-]`, at most one `@` (a template instance), ending
    /// in `.service` with a non-empty prefix.
    public static func isServiceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count <= 255, name.hasSuffix(".service"), bytes.count > ".service".count,
            bytes.filter({ $0 == UInt8(ascii: "@") }).count <= 1, bytes.first != UInt8(ascii: "@")
        else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || ":_.-@\\".utf8.contains(b)
        }
    }
}

/// PolkitRule renders the polkit rule that lets closewaitd's user restart exactly the units its
/// `restart_unit` actions name, and nothing else (not start, stop, or another unit; systemd
/// passes polkit the unit and the verb of every manage-units request).
public enum PolkitRule {
    public static let path = "/etc/polkit-1/rules.d/50-closewaitd.rules"

    /// A unit name (`RestartCheck.isServiceName`: no quote, no control) as a JavaScript string.
    public static func literal(_ unit: String) -> String {
        "\"" + unit.flatMap { $0 == "\\" ? "\\\\" : String($0) } + "\""
    }

    /// The units a rule file's text does not name (a cheap look for check-config, not polkit's
    /// verdict).
    public static func missing(_ units: [String], in text: String) -> [String] {
        units.filter { !text.contains(literal($0)) }
    }

    public static func render(units: [String], user: String = "closewaitd") -> String {
        let list = units.sorted().map(literal)
        return """
            // \(path): lets closewaitd restart the units its restart_unit actions name
            // (written by `closewaitd polkit-rule`; write it again when they change).
            polkit.addRule(function(action, subject) {
                var units = [\(list.joined(separator: ", "))];
                if (action.id == "org.freedesktop.systemd1.manage-units" &&
                    subject.user == "\(user)" &&
                    action.lookup("verb") == "restart" &&
                    units.indexOf(action.lookup("unit")) >= 0) {
                    return polkit.Result.YES;
                }
            });

            """
    }
}
