/// AlertPolicy turns tracker statuses into alerts: thresholds from the rule matching each
/// process, hold before firing, hysteresis before clearing, reminders, immediate escalation,
/// recovery messages and a cooldown before the same alert fires again. Pure.
public struct AlertPolicy: Sendable {
    /// A change (a reload) forgets every cached rule match.
    public var settings: Settings {
        didSet { ruleCache.removeAll() }
    }
    /// The rule matched per process, with what it was matched on: ten thousand glob rules
    /// are matched once per process, not once per process per tick. A process whose comm,
    /// exe, unit or container changed (exec) is matched again.
    struct MatchedOn: Equatable {
        var comm: ByteString
        var exe: ByteString?
        var unit: ByteString?
        var container: ContainerIdentity?
        init(_ d: ProcessDetails) { comm = d.comm; exe = d.exe; unit = d.unit; container = d.container }
    }
    private var ruleCache: [ProcessIdentity: (on: MatchedOn, rule: Rule)] = [:]
    /// Rule matches made (not served from the cache) by the last evaluate, for tests.
    public private(set) var rulesMatched = 0

    struct Key: Hashable {
        var process: ProcessIdentity?
        var reason: AlertReason
    }
    struct State {
        var pendingSince: Double?
        var pendingSamples = 0
        var firing: AlertLevel?
        var lastNotified = 0.0
        var lastRecovered: Double?
        var rule = "default"
        var lastStatus: ProcessStatus?
    }
    private(set) var states: [Key: State] = [:]

    public init(settings: Settings) {
        self.settings = settings
    }

    /// Alerts currently firing, by process (nil for host-wide).
    public var firing: [(ProcessIdentity?, AlertReason, AlertLevel)] {
        states.compactMap { key, state in state.firing.map { (key.process, key.reason, $0) } }
    }

    /// How many processes have an alert firing (the host-wide alerts are not a process).
    public var alertingProcesses: Int {
        Set(states.compactMap { key, state in state.firing == nil ? nil : key.process }).count
    }

    /// Moves the holds, firing alerts and cooldowns of a process that handed its sockets over
    /// (it exited; a child or a receiver holds them now: `Tracker.handovers`) to the new
    /// holder, so a leaker that forks and exits every few seconds is not a new, unalerted
    /// process each time. A firing alert carries on without a second "crossed" message.
    public mutating func handOver(_ moves: [Tracker.Handover]) {
        for move in moves {
            for reason in AlertReason.allCases where !reason.isHostWide {
                let from = Key(process: move.from, reason: reason), to = Key(process: move.to, reason: reason)
                guard let state = states[from] else { continue }
                // The successor takes the state unless its own is further along (firing, or
                // pending longer).
                if let own = states[to],
                    own.firing != nil || (state.firing == nil && own.pendingSamples >= state.pendingSamples)
                {
                    continue
                }
                states[to] = state
            }
        }
        // A gone predecessor is forgotten only once every move is done (two children may
        // continue one parent), without a "recovered": its sockets live on in the successor.
        for move in moves where move.fromGone {
            for reason in AlertReason.allCases where !reason.isHostWide {
                states[Key(process: move.from, reason: reason)] = nil
            }
        }
    }

    /// - Parameter unowned: CLOSE_WAIT sockets with an inode that no process holds.
    public mutating func evaluate(now: Double, statuses: [ProcessStatus], total: Int, unowned: Int = 0) -> [AlertEvent]
    {
        var events = [AlertEvent]()
        var seen = Set<Key>()
        rulesMatched = 0
        var cache = [ProcessIdentity: (on: MatchedOn, rule: Rule)]()
        cache.reserveCapacity(statuses.count)
        for status in statuses {
            let on = MatchedOn(status.details)
            let rule: Rule
            if let cached = ruleCache[status.details.identity], cached.on == on {
                rule = cached.rule
            } else {
                rule = settings.rule(for: status.details)
                rulesMatched += 1
            }
            cache[status.details.identity] = (on, rule)
            if rule.ignore {
                // Withdraw what was firing for it (a reload added the rule), saying why.
                for reason in AlertReason.allCases where !reason.isHostWide {
                    let key = Key(process: status.details.identity, reason: reason)
                    guard let state = states.removeValue(forKey: key) else { continue }
                    if let level = state.firing {
                        events.append(
                            AlertEvent(
                                kind: .recovered, reason: reason, level: level, process: status, total: total,
                                value: nil, threshold: 0, rule: rule.name, ignoredByRule: rule.name))
                    }
                }
                continue
            }
            let t = rule.thresholds
            let eligible = status.leakedSockets >= t.minCount
            let checks: [(AlertReason, Double?, Double, Double, Bool)] = [
                (.count, Double(status.leakedSockets), Double(t.countWarning), Double(t.countCritical), true),
                (.growth, eligible ? status.alertableGrowth : nil, t.growthWarning, t.growthCritical, true),
                (.age, eligible ? status.oldestAge : nil, t.ageWarning, t.ageCritical, true),
                (
                    .fdExhaustion, eligible ? status.predictedExhaustion : nil, t.exhaustionWarning,
                    t.exhaustionCritical, false
                ),
            ]
            for (reason, value, warning, critical, higherIsWorse) in checks {
                let key = Key(process: status.details.identity, reason: reason)
                seen.insert(key)
                let condition = Condition(
                    value: value, warning: warning, critical: critical,
                    higherIsWorse: higherIsWorse, clearRatio: settings.clearRatio)
                if let event = step(key, condition, now: now, rule: rule.name, process: status, total: total) {
                    events.append(event)
                }
            }
        }
        // Host-wide: every CLOSE_WAIT socket, and those no process holds.
        for (reason, value, warning, critical) in [
            (AlertReason.total, total, settings.totalWarning, settings.totalCritical),
            (.unowned, unowned, settings.unownedWarning, settings.unownedCritical),
        ] {
            let key = Key(process: nil, reason: reason)
            seen.insert(key)
            let condition = Condition(
                value: Double(value), warning: Double(warning), critical: Double(critical),
                higherIsWorse: true, clearRatio: settings.clearRatio)
            if let event = step(key, condition, now: now, rule: "host", process: nil, total: total) {
                events.append(event)
            }
        }
        ruleCache = cache
        // Processes that exited, dropped their sockets, or are now ignored: recover and forget.
        for (key, state) in states where !seen.contains(key) {
            if let level = state.firing {
                events.append(
                    AlertEvent(
                        kind: .recovered, reason: key.reason, level: level, process: state.lastStatus,
                        total: total, value: nil, threshold: 0, rule: state.rule, gone: true))
            }
            states[key] = nil
        }
        return events
    }

    struct Condition {
        var value: Double?
        var warning: Double
        var critical: Double
        var higherIsWorse: Bool
        var clearRatio: Double

        /// The level the value reaches now, ignoring hysteresis.
        var level: AlertLevel? {
            guard let value else { return nil }
            func reaches(_ threshold: Double) -> Bool {
                threshold > 0 && (higherIsWorse ? value >= threshold : value <= threshold)
            }
            if reaches(critical) { return .critical }
            if reaches(warning) { return .warning }
            return nil
        }

        func threshold(_ level: AlertLevel) -> Double { level == .critical ? critical : warning }

        /// The level below which (above which, for exhaustion) a firing condition clears.
        var clearLevel: Double {
            let lowest = warning > 0 ? warning : critical
            return higherIsWorse ? lowest * clearRatio : lowest / clearRatio
        }

        var cleared: Bool {
            guard let value else { return true }
            return higherIsWorse ? value < clearLevel : value > clearLevel
        }
    }

    mutating func step(_ key: Key, _ c: Condition, now: Double, rule: String, process: ProcessStatus?, total: Int)
        -> AlertEvent?
    {
        var state = states[key] ?? State()
        defer { states[key] = state }
        state.rule = rule
        state.lastStatus = process
        func event(_ kind: AlertKind, _ level: AlertLevel, threshold: Double) -> AlertEvent {
            AlertEvent(
                kind: kind, reason: key.reason, level: level, process: process, total: total,
                value: c.value, threshold: threshold, rule: rule)
        }
        if let firing = state.firing {
            if c.cleared {
                state.firing = nil
                state.lastRecovered = now
                state.pendingSince = nil
                state.pendingSamples = 0
                return event(.recovered, firing, threshold: c.clearLevel)
            }
            if let level = c.level, level > firing {
                state.firing = level
                state.lastNotified = now
                return event(.escalated, level, threshold: c.threshold(level))
            }
            if let level = c.level, level < firing,
                c.value.map({ c.higherIsWorse ? $0 < c.critical * c.clearRatio : $0 > c.critical / c.clearRatio })
                    == true
            {
                state.firing = level  // de-escalate quietly; the next reminder says warning
            }
            if settings.reminder > 0 && now - state.lastNotified >= settings.reminder {
                state.lastNotified = now
                let level = state.firing!
                return event(.reminder, level, threshold: c.threshold(level))
            }
            return nil
        }
        guard let level = c.level else {
            state.pendingSince = nil
            state.pendingSamples = 0
            return nil
        }
        state.pendingSince = state.pendingSince ?? now
        state.pendingSamples += 1
        let held: Bool
        switch settings.hold {
        case let .samples(n): held = state.pendingSamples >= n
        case let .duration(seconds): held = now - state.pendingSince! >= seconds
        }
        let cooled = state.lastRecovered.map { now - $0 >= settings.cooldown } ?? true
        guard held && cooled else { return nil }
        state.firing = level
        state.lastNotified = now
        return event(.crossed, level, threshold: c.threshold(level))
    }
}
