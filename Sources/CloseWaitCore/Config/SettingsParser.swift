/// SettingsParser validates a config document into Settings, collecting every problem with
/// file, line and key instead of stopping at the first.
public struct SettingsParser {
    public let file: String
    public let lines: ConfigLineIndex
    public private(set) var problems: [ConfigProblem] = []

    public static let sections: [String: [String]] = [
        "daemon": ["interval", "source", "scanner", "window", "full_scan_interval", "namespaces", "max_processes"],
        "alerts": ["hold", "reminder", "cooldown", "clear_ratio"],
        "thresholds": thresholdKeys + ["total_warning", "total_critical", "unowned_warning", "unowned_critical"],
        "metrics": ["textfile", "max_processes", "listen"],
        "containers": ["names", "docker_roots", "containerd_roots", "storage_roots", "hostname"],
        "actions": ["max_per_hour"],
    ]
    /// The process matchers a rule and an action share.
    static let matchKeys = [
        "match_unit", "match_comm", "match_exe", "match_container", "match_pod", "match_namespace",
    ]
    static let actionKeys =
        ["name", "level", "reason", "rule"] + matchKeys
        + ["exec", "restart_unit", "destroy_sockets", "cooldown", "dry_run", "timeout"]
    static let thresholdKeys = [
        "count_warning", "count_critical", "growth_warning", "growth_critical",
        "age_warning", "age_critical", "exhaustion_warning", "exhaustion_critical", "min_count",
    ]
    /// A comm is at most 15 bytes (TASK_COMM_LEN 16 with the NUL).
    public static let commMaxBytes = 15
    static let ruleKeys = ["name"] + matchKeys + ["ignore"] + thresholdKeys

    public init(file: String, text: String) {
        self.file = file
        lines = ConfigLineIndex(text: text)
    }

    /// Settings from a parsed document, or every problem found.
    public static func parse(_ root: ConfigNode, file: String, text: String) -> Result<Settings, ConfigErrors> {
        var parser = SettingsParser(file: file, text: text)
        let settings = parser.settings(from: root)
        let sorted = parser.problems.enumerated().sorted {
            ($0.element.line ?? Int.max, $0.offset) < ($1.element.line ?? Int.max, $1.offset)
        }
        return sorted.isEmpty ? .success(settings) : .failure(ConfigErrors(problems: sorted.map(\.element)))
    }

    mutating func settings(from root: ConfigNode) -> Settings {
        var settings = Settings()
        guard case let .table(top) = root else { problem("", "the document must be a table"); return settings }
        for key in top.keys.sorted() where Self.sections[key] == nil && key != "rule" && key != "action" {
            unknown(key, path: key, known: Array(Self.sections.keys) + ["rule", "action"])
        }
        if let daemon = section(top, "daemon") {
            settings.interval = duration(daemon, "daemon", "interval", min: 0.1, max: 3600) ?? settings.interval
            settings.window = duration(daemon, "daemon", "window", min: 1, max: 86400) ?? settings.window
            settings.fullScanInterval =
                duration(daemon, "daemon", "full_scan_interval", min: 0, max: 86400) ?? settings.fullScanInterval
            settings.maxProcesses =
                integer(daemon, "daemon", "max_processes", min: 1, max: 1_000_000) ?? settings.maxProcesses
            if let source = string(daemon, "daemon", "source") {
                if let choice = SourceChoice(rawValue: source) {
                    settings.source = choice
                } else {
                    problem("daemon.source", "must be auto, netlink or proc, not \"\(Escape.line(source))\"")
                }
            }
            if let scanner = string(daemon, "daemon", "scanner") {
                if let choice = ScannerChoice(rawValue: scanner) {
                    settings.scanner = choice
                } else {
                    problem("daemon.scanner", "must be auto, ebpf or poll, not \"\(Escape.line(scanner))\"")
                }
            }
            if let namespaces = string(daemon, "daemon", "namespaces") {
                if let choice = NamespaceChoice(rawValue: namespaces) {
                    settings.namespaces = choice
                } else {
                    problem("daemon.namespaces", "must be all or own, not \"\(Escape.line(namespaces))\"")
                }
            }
            if settings.window < settings.interval * 2 {
                problem(
                    "daemon.window", "must be at least twice daemon.interval (\(TimeSpan.format(settings.interval)))")
            }
        }
        if let alerts = section(top, "alerts") {
            if let node = alerts["hold"] {
                switch node {
                case let .int(n) where n >= 1 && n <= 1000: settings.hold = .samples(n)
                case .int: problem("alerts.hold", "samples must be between 1 and 1000")
                case let .string(text):
                    if let seconds = TimeSpan.parse(text) {
                        if seconds > 0 && seconds <= 86400 {
                            settings.hold = .duration(seconds)
                        } else {
                            problem(
                                "alerts.hold",
                                "\(TimeSpan.format(seconds)) is out of range (a time span above 0s, at most 1d; or 1 to 1000 samples)"
                            )
                        }
                    } else {
                        problem("alerts.hold", "\"\(Escape.line(text))\" is not a time span (like \"30s\", \"2min\")")
                    }
                default:
                    problem(
                        "alerts.hold", "must be a number of samples (3) or a time span (\"30s\"), not \(node.typeName)")
                }
            }
            settings.reminder = duration(alerts, "alerts", "reminder", min: 0, max: 7 * 86400) ?? settings.reminder
            settings.cooldown = duration(alerts, "alerts", "cooldown", min: 0, max: 86400) ?? settings.cooldown
            settings.clearRatio = number(alerts, "alerts", "clear_ratio", min: 0.1, max: 1) ?? settings.clearRatio
        }
        if let thresholds = section(top, "thresholds") {
            settings.thresholds = readThresholds(thresholds, "thresholds", base: settings.thresholds)
            settings.totalWarning =
                integer(thresholds, "thresholds", "total_warning", min: 0, max: 10_000_000) ?? settings.totalWarning
            settings.totalCritical =
                integer(thresholds, "thresholds", "total_critical", min: 0, max: 10_000_000) ?? settings.totalCritical
            ordered("thresholds.total", Double(settings.totalWarning), Double(settings.totalCritical))
            settings.unownedWarning =
                integer(thresholds, "thresholds", "unowned_warning", min: 0, max: 10_000_000) ?? settings.unownedWarning
            settings.unownedCritical =
                integer(thresholds, "thresholds", "unowned_critical", min: 0, max: 10_000_000)
                ?? settings.unownedCritical
            ordered("thresholds.unowned", Double(settings.unownedWarning), Double(settings.unownedCritical))
        }
        if let metrics = section(top, "metrics") {
            if let path = string(metrics, "metrics", "textfile") {
                if path.hasPrefix("/") && path.hasSuffix(".prom") {
                    settings.metricsTextfile = path
                } else {
                    problem(
                        "metrics.textfile",
                        "must be an absolute path ending in .prom (node_exporter's textfile collector reads only those)"
                    )
                }
            }
            settings.metricsMaxProcesses =
                integer(metrics, "metrics", "max_processes", min: 0, max: 100_000) ?? settings.metricsMaxProcesses
            if let text = string(metrics, "metrics", "listen") {
                if let address = ListenAddress(text) {
                    settings.metricsListen = address
                } else {
                    problem(
                        "metrics.listen",
                        "must be a numeric IPv4:PORT or [IPv6]:PORT with a port from 1 to 65535, e.g. \"127.0.0.1:\(ListenAddress.defaultPort)\" (no host names)"
                    )
                }
            }
        }
        if let containers = section(top, "containers") {
            var roots = settings.containers
            roots.names = bool(containers, "containers", "names") ?? roots.names
            roots.hostname = bool(containers, "containers", "hostname") ?? roots.hostname
            roots.docker = paths(containers, "containers", "docker_roots") ?? roots.docker
            roots.containerd = paths(containers, "containers", "containerd_roots") ?? roots.containerd
            roots.storage = paths(containers, "containers", "storage_roots") ?? roots.storage
            settings.containers = roots
        }
        if let actions = section(top, "actions") {
            settings.actions.maxPerHour =
                integer(actions, "actions", "max_per_hour", min: 1, max: 3600) ?? settings.actions.maxPerHour
        }
        if let node = top["action"] {
            settings.actions.specs = readActions(node)
        }
        if let node = top["rule"] {
            guard case let .array(items) = node else {
                problem("rule", "rules are written as [[rule]] tables")
                return settings
            }
            for (index, item) in items.enumerated() {
                let path = "rule[\(index + 1)]"
                guard case let .table(table) = item else { problem(path, "must be a table"); continue }
                for key in table.keys.sorted() where !Self.ruleKeys.contains(key) {
                    unknown(key, path: path + "." + key, known: Self.ruleKeys)
                }
                guard let name = string(table, path, "name") else {
                    if table["name"] == nil { problem(path, "needs a name") }
                    continue
                }
                var rule = readMatch(table, path, name: name)
                rule.thresholds = settings.thresholds
                if !Self.matchKeys.contains(where: { table[$0] != nil }) {
                    problem(path, "needs at least one of " + Self.matchKeys.joined(separator: ", "))
                }
                rule.ignore = bool(table, path, "ignore") ?? false
                rule.thresholds = readThresholds(table, path, base: settings.thresholds)
                settings.rules.append(rule)
            }
        }
        return settings
    }

    /// Every `[[action]]`: a name, exactly one thing to do, filters and rails.
    mutating func readActions(_ node: ConfigNode) -> [ActionSpec] {
        guard case let .array(items) = node else {
            problem("action", "actions are written as [[action]] tables"); return []
        }
        var specs = [ActionSpec]()
        for (index, item) in items.enumerated() {
            let path = "action[\(index + 1)]"
            guard case let .table(table) = item else { problem(path, "must be a table"); continue }
            for key in table.keys.sorted() where !Self.actionKeys.contains(key) {
                unknown(key, path: path + "." + key, known: Self.actionKeys)
            }
            guard let name = string(table, path, "name") else {
                if table["name"] == nil { problem(path, "needs a name") }
                continue
            }
            if specs.contains(where: { $0.name == name }) {
                problem(path + ".name", "\"\(Escape.line(name))\" is used by another action")
            }
            let destroy = bool(table, path, "destroy_sockets")
            let restart = bool(table, path, "restart_unit")
            let given = [table["exec"] != nil, destroy != nil, restart != nil].filter { $0 }.count
            let kind: ActionSpec.Kind
            if given > 1 {
                problem(path, "does one thing: exec, restart_unit or destroy_sockets, not more")
                continue
            } else if destroy == true {
                kind = .destroySockets
            } else if restart == true {
                guard let unit = restartedUnit(table, path) else { continue }
                kind = .restartUnit(unit)
            } else if let argv = execArgv(table, path) {
                kind = .exec(argv)
            } else {
                if table["exec"] == nil {
                    let off = destroy == false ? "destroy_sockets" : restart == false ? "restart_unit" : nil
                    problem(
                        path,
                        off.map { "\($0) = false does nothing: say what to do (exec = [\"/path/to/command\", …])" }
                            ?? "needs something to do: exec = [\"/path/to/command\", \"arg\", …], restart_unit = true or destroy_sockets = true"
                    )
                }
                continue
            }
            var spec = ActionSpec(name: name, kind: kind)
            spec.levels = Set(
                strings(table, path, "level", allowed: ["warning", "critical"]).compactMap {
                    $0 == "warning" ? AlertLevel.warning : AlertLevel.critical
                })
            let perProcess = AlertReason.allCases.filter { !$0.isHostWide }.map(\.rawValue)
            spec.reasons = Set(
                strings(table, path, "reason", allowed: perProcess).compactMap(AlertReason.init(rawValue:)))
            spec.rules = Set(strings(table, path, "rule", allowed: nil))
            if Self.matchKeys.contains(where: { table[$0] != nil }) { spec.match = readMatch(table, path, name: name) }
            spec.cooldown = duration(table, path, "cooldown", min: 1, max: 7 * 86400) ?? spec.cooldown
            spec.timeout = duration(table, path, "timeout", min: 0.1, max: 3600) ?? spec.timeout
            spec.dryRun = bool(table, path, "dry_run") ?? false
            specs.append(spec)
        }
        return specs
    }

    /// restart_unit restarts exactly the unit `match_unit` names: one service written out (no
    /// glob), so the polkit rule can allow that unit and no other.
    mutating func restartedUnit(_ table: [String: ConfigNode], _ path: String) -> String? {
        guard let unit = string(table, path, "match_unit") else {
            if table["match_unit"] == nil {
                problem(
                    path + ".match_unit",
                    "restart_unit needs match_unit naming the one service it restarts (match_unit = \"orders.service\")"
                )
            }
            return nil
        }
        guard RestartCheck.isServiceName(unit) else {
            problem(
                path + ".match_unit",
                "restart_unit restarts exactly one .service unit written out (no glob, no scope), not \"\(Escape.line(unit))\""
            )
            return nil
        }
        guard unit != "closewaitd.service" else {
            problem(path + ".match_unit", "closewaitd never restarts its own unit")
            return nil
        }
        return unit
    }

    /// The `match_*` globs of a rule or an action table, as a rule (default thresholds); a
    /// match_comm longer than the kernel keeps a comm is named (it could never match).
    mutating func readMatch(_ table: [String: ConfigNode], _ path: String, name: String) -> Rule {
        let rule = Rule(
            name: name, matchUnit: string(table, path, "match_unit"), matchComm: string(table, path, "match_comm"),
            matchExe: string(table, path, "match_exe"), matchContainer: string(table, path, "match_container"),
            matchPod: string(table, path, "match_pod"), matchNamespace: string(table, path, "match_namespace"))
        if let comm = rule.matchComm, Glob.minimumLength(comm) > Self.commMaxBytes {
            problem(
                path + ".match_comm",
                "matches only names of \(Glob.minimumLength(comm)) bytes or more, but the kernel keeps "
                    + "at most \(Self.commMaxBytes) bytes of a comm (TASK_COMM_LEN), so it never matches; use match_exe for longer names"
            )
        }
        return rule
    }

    /// `exec`: an argv of non-empty strings whose first is an absolute path (no shell, no PATH
    /// search: the command that runs is the one written).
    mutating func execArgv(_ t: [String: ConfigNode], _ path: String) -> [String]? {
        guard let node = t["exec"] else { return nil }
        let key = path + ".exec"
        guard case let .array(items) = node, !items.isEmpty else {
            problem(
                key,
                "must be a list: the command and its arguments, [\"/usr/local/bin/page\", \"--critical\"] (no shell)")
            return nil
        }
        var argv = [String]()
        for item in items {
            guard case let .string(text) = item, !text.unicodeScalars.contains(where: { $0.value == 0 }) else {
                problem(key, "every element must be a string without NUL, not \(item.typeName)")
                return nil
            }
            argv.append(text)
        }
        guard argv[0].hasPrefix("/") else {
            problem(key, "the command must be an absolute path (no PATH search), not \"\(Escape.line(argv[0]))\"")
            return nil
        }
        return argv
    }

    /// A string or a list of strings; with `allowed`, each must be one of them.
    mutating func strings(_ t: [String: ConfigNode], _ path: String, _ key: String, allowed: [String]?) -> [String] {
        guard let node = t[key] else { return [] }
        let items: [ConfigNode]
        if case let .array(list) = node { items = list } else { items = [node] }
        var out = [String]()
        for item in items {
            guard case let .string(text) = item, !text.isEmpty else {
                problem(path + "." + key, "must be a string or a list of strings, not \(item.typeName)")
                return []
            }
            if let allowed, !allowed.contains(text) {
                problem(
                    path + "." + key, "must be one of \(allowed.joined(separator: ", ")), not \"\(Escape.line(text))\"")
                return []
            }
            out.append(text)
        }
        return out
    }

    mutating func readThresholds(_ t: [String: ConfigNode], _ path: String, base: Thresholds) -> Thresholds {
        var r = base
        r.countWarning = integer(t, path, "count_warning", min: 0, max: 10_000_000) ?? r.countWarning
        r.countCritical = integer(t, path, "count_critical", min: 0, max: 10_000_000) ?? r.countCritical
        r.growthWarning = number(t, path, "growth_warning", min: 0, max: 1e6) ?? r.growthWarning
        r.growthCritical = number(t, path, "growth_critical", min: 0, max: 1e6) ?? r.growthCritical
        r.ageWarning = duration(t, path, "age_warning", min: 0, max: 365 * 86400) ?? r.ageWarning
        r.ageCritical = duration(t, path, "age_critical", min: 0, max: 365 * 86400) ?? r.ageCritical
        r.exhaustionWarning = duration(t, path, "exhaustion_warning", min: 0, max: 365 * 86400) ?? r.exhaustionWarning
        r.exhaustionCritical =
            duration(t, path, "exhaustion_critical", min: 0, max: 365 * 86400) ?? r.exhaustionCritical
        r.minCount = integer(t, path, "min_count", min: 0, max: 10_000_000) ?? r.minCount
        // Check the order only where this table sets a level: a rule inheriting a bad pair
        // from [thresholds] is reported there, once.
        func sets(_ name: String) -> Bool { t[name + "_warning"] != nil || t[name + "_critical"] != nil }
        if sets("count") { ordered(path + ".count", Double(r.countWarning), Double(r.countCritical)) }
        if sets("growth") { ordered(path + ".growth", r.growthWarning, r.growthCritical) }
        if sets("age") { ordered(path + ".age", r.ageWarning, r.ageCritical) }
        if sets("exhaustion"),
            r.exhaustionWarning != 0 && r.exhaustionCritical != 0 && r.exhaustionCritical > r.exhaustionWarning
        {
            problem(
                path + ".exhaustion_critical",
                "must not be longer than exhaustion_warning (a sooner exhaustion is worse)")
        }
        return r
    }

    /// Warning must not exceed critical when both are enabled.
    mutating func ordered(_ prefix: String, _ warning: Double, _ critical: Double) {
        if warning != 0 && critical != 0 && warning > critical {
            problem(prefix + "_warning", "must not exceed \(prefix.split(separator: ".").last!)_critical")
        }
    }

    // MARK: typed readers

    mutating func section(_ top: [String: ConfigNode], _ name: String) -> [String: ConfigNode]? {
        guard let node = top[name] else { return nil }
        guard case let .table(table) = node else { problem(name, "must be a table ([\(name)])"); return nil }
        let known = Self.sections[name] ?? []
        for key in table.keys.sorted() where !known.contains(key) {
            unknown(key, path: name + "." + key, known: known)
        }
        return table
    }

    mutating func duration(_ t: [String: ConfigNode], _ path: String, _ key: String, min: Double, max: Double)
        -> Double?
    {
        guard let node = t[key] else { return nil }
        let full = path + "." + key
        let seconds: Double
        switch node {
        case let .string(text):
            guard let parsed = TimeSpan.parse(text) else {
                problem(full, "\"\(Escape.line(text))\" is not a time span (like \"30s\", \"5min\", \"1h\")");
                return nil
            }
            seconds = parsed
        case let .int(n): seconds = Double(n)
        case let .double(d): seconds = d
        default: problem(full, "must be a time span like \"30s\", not \(node.typeName)"); return nil
        }
        if seconds == 0 && min == 0 { return 0 }
        guard seconds >= min && seconds <= max else {
            problem(
                full, "\(TimeSpan.format(seconds)) is out of range (\(TimeSpan.format(min))–\(TimeSpan.format(max)))")
            return nil
        }
        return seconds
    }

    mutating func integer(_ t: [String: ConfigNode], _ path: String, _ key: String, min: Int, max: Int) -> Int? {
        guard let node = t[key] else { return nil }
        guard case let .int(n) = node else {
            problem(path + "." + key, "must be an integer, not \(node.typeName)"); return nil
        }
        guard n >= min && n <= max else {
            problem(path + "." + key, "\(n) is out of range (\(min)–\(max))"); return nil
        }
        return n
    }

    mutating func number(_ t: [String: ConfigNode], _ path: String, _ key: String, min: Double, max: Double) -> Double?
    {
        guard let node = t[key] else { return nil }
        let value: Double
        switch node {
        case let .int(n): value = Double(n)
        case let .double(d): value = d
        default: problem(path + "." + key, "must be a number, not \(node.typeName)"); return nil
        }
        guard value >= min && value <= max else {
            problem(path + "." + key, "\(value) is out of range (\(min)–\(max))"); return nil
        }
        return value
    }

    mutating func string(_ t: [String: ConfigNode], _ path: String, _ key: String) -> String? {
        guard let node = t[key] else { return nil }
        guard case let .string(s) = node, !s.isEmpty else {
            problem(path + "." + key, "must be a non-empty string, not \(node.typeName)"); return nil
        }
        // No name the kernel or systemd reports holds a NUL or a control character; a pattern
        // with one is a mistake that would silently never match.
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            problem(
                path + "." + key, "must not contain control characters or NUL (\"\(Escape.bytes(Array(s.utf8)))\")");
            return nil
        }
        return s
    }

    /// Absolute directory paths (a list, or one string), at most 8.
    mutating func paths(_ t: [String: ConfigNode], _ path: String, _ key: String) -> [String]? {
        guard let node = t[key] else { return nil }
        let items: [ConfigNode]
        switch node {
        case .string: items = [node]
        case let .array(list): items = list
        default: problem(path + "." + key, "must be a list of absolute paths, not \(node.typeName)"); return nil
        }
        guard items.count <= 8 else { problem(path + "." + key, "at most 8 paths"); return nil }
        var out = [String]()
        for item in items {
            guard case let .string(text) = item, text.hasPrefix("/"),
                !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
            else {
                let what = if case let .string(text) = item { "\"\(Escape.line(text))\"" } else { item.typeName }
                problem(path + "." + key, "every entry must be an absolute path (\"/var/lib/docker\"), not \(what)")
                return nil
            }
            out.append(text)
        }
        return out
    }

    mutating func bool(_ t: [String: ConfigNode], _ path: String, _ key: String) -> Bool? {
        guard let node = t[key] else { return nil }
        guard case let .bool(b) = node else {
            problem(path + "." + key, "must be true or false, not \(node.typeName)"); return nil
        }
        return b
    }

    mutating func unknown(_ key: String, path: String, known: [String]) {
        let nearest = known.min { editDistance(key, $0) < editDistance(key, $1) }
        var message = "unknown key"
        if let nearest, editDistance(key, nearest) <= max(2, key.count / 3) { message += "; did you mean \(nearest)?" }
        problem(path, message)
    }

    mutating func problem(_ key: String, _ message: String) {
        // The line of the key, else of its table.
        var line = lines.line(key)
        var parent = key
        while line == nil, let dot = parent.lastIndex(of: ".") {
            parent = String(parent[..<dot])
            line = lines.line(parent)
        }
        problems.append(ConfigProblem(file: file, line: line, key: key, message: message))
    }
}

/// ConfigErrors is every problem found in a config file.
public struct ConfigErrors: Error, Equatable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
