/// DiagnosisSchedule decides when the daemon looks closer at an alerting process (a
/// peer-filtered dump and one fd-table scan, about 10 ms at 50k sockets) and keeps the last
/// look of each: the kernel is looked at when an alert is sent and every
/// `rediagnoseInterval` while it fires; in between, each tick classifies again from that look
/// and the tracker's current count, growth and pattern. A tick spends at most a budget of
/// looks and of time, so a host where hundreds of processes alert at once stays within its
/// tick; the rest keep their last diagnosis (or none) and get their turn on a later tick,
/// longest-unrefreshed first. Pure: time comes in as values, the look is the caller's.
public struct DiagnosisSchedule: Sendable {
    /// A look for every alert sent (its evidence is of that moment; a second alert of the same
    /// process in the same tick shares the look), unless one was taken `alertRelook` seconds
    /// ago or less; a look at a process that keeps firing every `rediagnoseInterval`; per tick
    /// at most `alertsPerTick` looks for alerts sent and `refreshesPerTick` refreshes, and
    /// none once the tick has spent `timePerTick` on them (a look into a namespace someone
    /// filled with TIME_WAIT entries reads a large table).
    public struct Limits: Sendable, Equatable {
        public var alertRelook = 0.0, rediagnoseInterval = 600.0, timePerTick = 1.0
        public var alertsPerTick = 20, refreshesPerTick = 1

        public init() {}
    }

    public struct Entry: Sendable {
        public var diagnosis: Diagnosis
        public var evidence: Evidence
        /// Tick time of the look the evidence came from.
        public var at: Double
    }

    public var limits: Limits
    public private(set) var entries: [ProcessIdentity: Entry] = [:]
    private var budget = (alerts: 0, refreshes: 0)
    /// Monotonic seconds after which this tick looks no more.
    public private(set) var deadline = 0.0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Starts a tick: what stopped firing is forgotten, a successor (`Tracker.handovers`)
    /// inherits its predecessor's look, and the budgets are full again.
    /// - Parameter clock: monotonic seconds now (the time budget runs from here).
    public mutating func beginTick(firing: Set<ProcessIdentity>, handovers: [Tracker.Handover], clock: Double) {
        for move in handovers where entries[move.to] == nil { entries[move.to] = entries[move.from] }
        entries = entries.filter { firing.contains($0.key) }
        budget = (limits.alertsPerTick, limits.refreshesPerTick)
        deadline = clock + limits.timePerTick
    }

    /// The firing processes in the order their refresh is due: never looked at first, then
    /// the longest unrefreshed.
    public func refreshOrder(_ statuses: [ProcessStatus], firing: Set<ProcessIdentity>) -> [ProcessStatus] {
        statuses.filter { firing.contains($0.details.identity) }
            .sorted {
                (entries[$0.details.identity]?.at ?? -.infinity) < (entries[$1.details.identity]?.at ?? -.infinity)
            }
    }

    /// Whether to look at the kernel for this process now; a yes takes one from the budget.
    /// - Parameters:
    ///   - alert: the process is sending an alert (else: a refresh while it fires).
    ///   - now: the tick's time; `clock`: monotonic seconds now, for the time budget.
    public mutating func wantsLook(_ identity: ProcessIdentity, alert: Bool, now: Double, clock: Double) -> Bool {
        let age = entries[identity].map { now - $0.at } ?? .infinity
        guard age > 0, age >= (alert ? limits.alertRelook : limits.rediagnoseInterval), clock < deadline else {
            return false
        }
        if alert {
            guard budget.alerts > 0 else { return false }
            budget.alerts -= 1
        } else {
            guard budget.refreshes > 0 else { return false }
            budget.refreshes -= 1
        }
        return true
    }

    /// Records a look taken at tick time `now` and classifies it.
    public mutating func record(_ identity: ProcessIdentity, evidence: Evidence, now: Double) -> (Diagnosis, Evidence) {
        let diagnosis = Diagnosis.classify(evidence)
        entries[identity] = Entry(diagnosis: diagnosis, evidence: evidence, at: now)
        return (diagnosis, evidence)
    }

    /// Without a new look: the kernel's side of the last one (peers, queues, live
    /// connections, and how old it is) with the tracker's side now (count, growth, pattern,
    /// flows); nil if never looked.
    public mutating func reclassify(_ status: ProcessStatus, now: Double) -> (Diagnosis, Evidence)? {
        let identity = status.details.identity
        guard var entry = entries[identity] else { return nil }
        entry.evidence.refresh(from: status)
        entry.evidence.lookedSecondsAgo = max(0, now - entry.at)
        entry.diagnosis = Diagnosis.classify(entry.evidence)
        entries[identity] = entry
        return (entry.diagnosis, entry.evidence)
    }

    /// Every current diagnosis, for the state file.
    public var current: [ProcessIdentity: (Diagnosis, Evidence)] { entries.mapValues { ($0.diagnosis, $0.evidence) } }
}
