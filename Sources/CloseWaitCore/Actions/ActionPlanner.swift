/// ActionPlanner decides, from a tick's alert events, which actions run now: pure, time passed
/// in. An action runs at most once per `cooldown` for the same process (pid + start time) —
/// a `restart_unit` once per `cooldown` for its unit, since every restart makes a new process
/// and a per-process cooldown would let a leak that comes back restart it every time —, and
/// all actions together at most `maxPerHour` times in any sliding hour; what is held back is
/// still reported (with why), so every alert an action answered leaves a trail.
public struct ActionPlanner: Sendable {
    public struct Planned: Sendable {
        public var spec: ActionSpec
        public var event: AlertEvent
        public var decision: Decision
    }

    public enum Decision: Equatable, Sendable {
        case run
        case dryRun
        /// Held back: the reason in a phrase (`cooldown: ran 2min ago, again after 10min`).
        case skipped(String)
    }

    public var settings: ActionSettings
    /// What a cooldown is kept for: the process, or the unit a restart restarts.
    enum Subject: Hashable {
        case process(ProcessIdentity)
        case unit(String)
    }

    /// Last start per (process or unit, action name).
    var lastRun: [Subject: [String: Double]] = [:]
    /// Start times within the last hour.
    var starts: [Double] = []

    public init(settings: ActionSettings = ActionSettings()) {
        self.settings = settings
    }

    /// - Parameter running: actions still running (each takes a slot of `maxRunning`).
    public mutating func plan(_ events: [AlertEvent], now: Double, running: Int = 0) -> [Planned] {
        starts.removeAll { now - $0 >= 3600 }
        var out = [Planned]()
        var busy = running
        for spec in settings.specs {
            // One answer per process (unit) and action a tick, the worst alert first.
            var seen = Set<Subject>()
            for event in events.sorted(by: { $0.level > $1.level }) where spec.answers(event) {
                guard let identity = event.process?.details.identity else { continue }
                let subject = spec.unit.map(Subject.unit) ?? .process(identity)
                guard seen.insert(subject).inserted else { continue }
                let held: String? =
                    if let last = lastRun[subject]?[spec.name], now - last < spec.cooldown {
                        "cooldown: ran \(TimeSpan.format(now - last)) ago, again after \(TimeSpan.format(spec.cooldown))"
                    } else if starts.count >= settings.maxPerHour {
                        "max_per_hour: \(settings.maxPerHour) actions started in the last hour"
                    } else if !spec.dryRun && busy >= ActionSettings.maxRunning {
                        "\(ActionSettings.maxRunning) actions still running"
                    } else {
                        nil
                    }
                if let held {
                    out.append(Planned(spec: spec, event: event, decision: .skipped(held)))
                    continue
                }
                lastRun[subject, default: [:]][spec.name] = now
                starts.append(now)
                if !spec.dryRun { busy += 1 }
                out.append(Planned(spec: spec, event: event, decision: spec.dryRun ? .dryRun : .run))
            }
        }
        return out
    }

    /// Forgets processes no longer tracked (their cooldowns end with them); a unit's cooldown
    /// outlives its processes (a unit is kept per action that names it: a handful).
    public mutating func keep(only present: Set<ProcessIdentity>) {
        lastRun = lastRun.filter {
            if case let .process(identity) = $0.key { present.contains(identity) } else { true }
        }
    }
}
