/// ProcessStatus is what the tracker knows about a process after a tick.
public struct ProcessStatus: Sendable {
    public var details: ProcessDetails
    public var count: Int
    public var peers: [PeerCount]
    /// New CLOSE_WAIT sockets per minute over the window; nil until the history spans half
    /// the window (a burst at start-up is not a trend).
    public var growthPerMinute: Double?
    /// Seconds since the oldest current CLOSE_WAIT socket was first seen (a lower bound: a
    /// socket already present when the daemon started counts from then).
    public var oldestAge: Double
    /// When this process was first seen holding CLOSE_WAIT sockets (monotonic seconds).
    public var since: Double
    /// Seconds until open fds reach the soft limit at the current growth; nil when not growing
    /// or unlimited.
    public var predictedExhaustion: Double?
    /// Before growth is known: the rate seen so far and over how many seconds (at least two
    /// samples), for people to read ("+1200/min over 25 s, early"); alerts use it only once it is
    /// robust (`alertableGrowth`).
    public var earlyGrowth: (perMinute: Double, seconds: Double)? = nil
    /// How the count moved over the window (`unknown` before half a window).
    public var pattern: GrowthPattern = .unknown
    /// What the sockets did over the window (`Flows`): how many entered CLOSE_WAIT after the
    /// process was first seen, how many left it while the process lived.
    public var flows = Flows()
    /// New open fds per minute over the window (least squares), once half a window is known:
    /// a leak whose sockets the kernel reset (they leave CLOSE_WAIT, the fds stay open) still
    /// climbs here.
    public var fdGrowthPerMinute: Double? = nil
    /// Sockets that left CLOSE_WAIT without being closed: the kernel reset them (a keepalive
    /// probe or the peer's RST: state CLOSE) and the process still holds their fds. Leaked as
    /// surely as the CLOSE_WAIT ones; set by the pipeline, which looks for them.
    public var heldAfterReset = 0
    /// What the count alert weighs: CLOSE_WAIT sockets and those reset but still held.
    public var leakedSockets: Int { count + heldAfterReset }

    public var topPeer: PeerCount? { peers.first }

    /// The growth alerts use: the fitted growth once half a window is known; before that,
    /// the early rate when it is robust (`Flows.robustEarly`).
    public var alertableGrowth: Double? {
        let closeWait = growthPerMinute ?? (flows.robustEarly ? earlyGrowth?.perMinute : nil)
        // Sockets the kernel reset leave CLOSE_WAIT but keep their fds: then the fds' climb is
        // the leak's (a CLOSE_WAIT count held flat by resets is no recovery).
        guard heldAfterReset > 0, let fds = fdGrowthPerMinute else { return closeWait }
        return max(closeWait ?? fds, fds)
    }

    /// Sockets entering and leaving CLOSE_WAIT over the tracker window, and how the count
    /// moved tick to tick (what each socket did, not only the count's shape).
    public struct Flows: Sendable, Equatable {
        /// Sockets first seen in CLOSE_WAIT after the process's first sample.
        public var arrived = 0
        /// Sockets gone from CLOSE_WAIT while the process held others (closed by the
        /// application, or reset by the kernel).
        public var left = 0
        /// Ticks (after the first) that brought at least one new socket.
        public var ticksWithArrivals = 0
        /// Seconds of history these cover.
        public var seconds = 0.0
        /// The count never fell over these ticks.
        public var neverFell = true

        public init(
            arrived: Int = 0, left: Int = 0, ticksWithArrivals: Int = 0, seconds: Double = 0, neverFell: Bool = true
        ) {
            self.arrived = arrived
            self.left = left
            self.ticksWithArrivals = ticksWithArrivals
            self.seconds = seconds
            self.neverFell = neverFell
        }

        /// Enough history to trust an early rate: 30 s or more, at least 10 new sockets
        /// arriving on 4 or more ticks, none leaving, the count never falling. A pool warming
        /// up arrives in one burst (one or two ticks) and then turns over (sockets leave); a
        /// leak keeps arriving and nothing leaves.
        public var robustEarly: Bool {
            seconds >= 30 && arrived >= 10 && ticksWithArrivals >= 4 && left == 0 && neverFell
        }

        /// Of those that left, still held by the process (reset by the kernel, not closed).
        public var resetButHeld = 0
        /// Nothing (or next to nothing) is closed: what arrives stays, in CLOSE_WAIT or reset.
        public var nothingLeaves: Bool { max(0, left - resetButHeld) <= max(1, arrived / 10) }
    }

    /// The one order statuses are reported in (journal, state file, metrics): most CLOSE_WAIT
    /// sockets first, then by pid.
    public static func reportOrder(_ a: ProcessStatus, _ b: ProcessStatus) -> Bool {
        (b.count, a.details.pid) < (a.count, b.details.pid)
    }

    /// `statuses` in report order: as given when already so (a tick's result), else sorted.
    public static func inReportOrder(_ statuses: [ProcessStatus]) -> [ProcessStatus] {
        let ordered = zip(statuses, statuses.dropFirst()).allSatisfy { !reportOrder($1, $0) }
        return ordered ? statuses : statuses.sorted(by: reportOrder)
    }
}

/// Tracker keeps per-process history between ticks: counts over a window, the first-seen time
/// of every CLOSE_WAIT socket, growth and fd headroom. Pure: time comes in as a value.
public struct Tracker: Sendable {
    public var window: Double
    struct History: Sendable {
        var samples: [(time: Double, count: Int)] = []
        /// Per sample (same trimming): sockets that arrived and left since the one before, and
        /// the process's open fds.
        var moves: [(arrived: Int, left: Int, fds: Int)] = []
        /// (inode, first seen), ascending by inode: merged with each tick's sorted inodes,
        /// 16 bytes a socket and no hashing.
        var firstSeen: [(inode: UInt64, seen: Double)] = []
        var since: Double
    }
    private(set) var histories: [ProcessIdentity: History] = [:]
    /// The hand-overs found by the last update: a new process holding (mostly) the sockets of
    /// one tracked before — a forked child, a receiver of SCM_RIGHTS — continues that one's
    /// history (counts, first-seen times); and a process that is gone, whose sockets another
    /// now holds, hands its alert state to it. `fromGone` says which (the policy moves the
    /// holds and firing alerts of a gone one, and copies a living one's: `AlertPolicy.handOver`).
    public private(set) var handovers: [Handover] = []
    /// The sockets each process held in CLOSE_WAIT at the tick before and no longer does
    /// (closed by it, or reset by the kernel while it still holds the fd): the pipeline checks
    /// whether it still holds them (`ProcessStatus.heldAfterReset`).
    public private(set) var departed: [ProcessIdentity: [UInt64]] = [:]

    public struct Handover: Sendable, Equatable {
        public var from: ProcessIdentity
        public var to: ProcessIdentity
        public var fromGone: Bool
    }

    public init(window: Double) {
        self.window = window
    }

    public var trackedProcesses: Int { histories.count }

    /// Seconds since each of a process's current CLOSE_WAIT sockets was first seen.
    public func socketAges(_ identity: ProcessIdentity, now: Double) -> [Double] {
        histories[identity]?.firstSeen.map { now - $0.seen } ?? []
    }

    /// Records one tick; processes absent from `observations` (exited, or no longer holding
    /// sampled sockets) are forgotten, so state stays bounded by what the host holds now.
    /// - Parameter enteredAt: socket inode -> when it entered CLOSE_WAIT, where the kernel
    ///   said (the eBPF scanner): a new socket's age counts from then, not from first seen.
    public mutating func update(
        now: Double, observations: [ProcessEntry], enteredAt: [UInt64: Double] = [:]
    ) -> [ProcessStatus] {
        var next = [ProcessIdentity: History]()
        next.reserveCapacity(observations.count)
        var statuses = [ProcessStatus]()
        statuses.reserveCapacity(observations.count)
        handovers = lineage(observations)
        departed = [:]
        let predecessors = Dictionary(grouping: handovers, by: \.to)
        for observation in observations {
            let identity = observation.details.identity
            let mine = predecessors[identity] ?? []
            // A newcomer continues its predecessor's history.
            var history = histories[identity] ?? mine.first.flatMap { histories[$0.from] } ?? History(since: now)
            // A successor already tracked (seen with a new socket before its predecessor
            // exited) takes the older history: first-seen times, since, and the longer series.
            for move in mine where move.fromGone && histories[identity] != nil {
                guard let old = histories[move.from] else { continue }
                history.since = min(history.since, old.since)
                var seen = [UInt64: Double]()
                for entry in old.firstSeen { seen[entry.inode] = entry.seen }
                history.firstSeen = history.firstSeen.map { ($0.inode, min($0.seen, seen[$0.inode] ?? $0.seen)) }
                if let first = old.samples.first, first.time < (history.samples.first?.time ?? .infinity) {
                    history.samples = old.samples
                    history.moves = old.moves
                }
            }
            let inodes = observation.inodes.isSorted ? observation.inodes : observation.inodes.sorted()
            var firstSeen = [(inode: UInt64, seen: Double)]()
            firstSeen.reserveCapacity(inodes.count)
            var oldest = now
            var j = 0
            var kept = 0
            // The previous sockets the merge passes over are the ones gone since.
            var gone = [UInt64]()
            let previous = history.firstSeen
            for inode in inodes {
                while j < previous.count && previous[j].inode < inode {
                    gone.append(previous[j].inode)
                    j += 1
                }
                let known = j < previous.count && previous[j].inode == inode
                let seen = known ? previous[j].seen : min(now, enteredAt[inode] ?? now)
                if known {
                    kept += 1
                    j += 1
                }
                firstSeen.append((inode, seen))
                oldest = min(oldest, seen)
            }
            gone += previous[j...].map(\.inode)
            if !gone.isEmpty { departed[identity] = gone }
            // The first sample of a history is what was there, not what arrived.
            let first = history.samples.isEmpty
            history.moves.append(
                (first ? 0 : inodes.count - kept, first ? 0 : gone.count, observation.details.fdOpen))
            history.firstSeen = firstSeen
            history.samples.append((now, observation.inodes.count))
            // Keep the samples inside the window plus the last one before it, the baseline.
            if let firstInside = history.samples.firstIndex(where: { $0.time >= now - window }), firstInside > 1 {
                history.samples.removeFirst(firstInside - 1)
                history.moves.removeFirst(firstInside - 1)
            }
            let count = observation.inodes.count
            // Growth is the least-squares slope of the counts over the window, not the difference
            // of its two ends: one sample that missed some sockets (a pool turning over while a
            // slow walk ran) must not read as a leak, while a steady climb gives its exact rate.
            var growth: Double?
            if let baseline = history.samples.first, now - baseline.time >= window / 2, now > baseline.time {
                growth = Self.slopePerMinute(history.samples)
            }
            var early: (perMinute: Double, seconds: Double)?
            if growth == nil, history.samples.count >= 2, let first = history.samples.first, now > first.time {
                early = (Self.slopePerMinute(history.samples), now - first.time)
            }
            var flows = ProcessStatus.Flows(seconds: now - (history.samples.first?.time ?? now))
            // The baseline sample's moves happened before the window.
            for (i, move) in history.moves.enumerated().dropFirst() {
                flows.arrived += move.arrived
                flows.left += move.left
                if move.arrived > 0 { flows.ticksWithArrivals += 1 }
                if history.samples[i].count < history.samples[i - 1].count { flows.neverFell = false }
            }
            var fdGrowth: Double?
            if growth != nil {
                fdGrowth = Self.slopePerMinute(zip(history.samples, history.moves).map { ($0.0.time, $0.1.fds) })
            }
            // Exhaustion from whichever climbs faster: the CLOSE_WAIT sockets, or the open fds
            // (sockets the kernel reset leave CLOSE_WAIT but keep their fds).
            let climb = max(growth ?? 0, fdGrowth ?? 0, flows.robustEarly ? (early?.perMinute ?? 0) : 0)
            var exhaustion: Double?
            if climb > 0, let limit = observation.details.fdLimit {
                let headroom = Double(limit) - Double(observation.details.fdOpen)
                exhaustion = max(0, headroom) / climb * 60
            }
            statuses.append(
                ProcessStatus(
                    details: observation.details, count: count, peers: observation.peers,
                    growthPerMinute: growth, oldestAge: now - oldest, since: history.since,
                    predictedExhaustion: exhaustion, earlyGrowth: early,
                    pattern: GrowthPattern.of(history.samples, window: window), flows: flows,
                    fdGrowthPerMinute: fdGrowth))
            next[identity] = history
        }
        histories = next
        return statuses
    }
}

extension Tracker {
    /// The hand-overs of this tick: for each process seen for the first time, the tracked
    /// process that held most of its sockets (at least half of them), whose history it
    /// continues; and for each process gone since the last tick, the present one that holds
    /// most of its sockets now. Costs nothing on a tick where no process is new and none went
    /// away.
    func lineage(_ observations: [ProcessEntry]) -> [Handover] {
        let present = Set(observations.map(\.details.identity))
        let newcomers = observations.filter { histories[$0.details.identity] == nil }
        let gone = histories.filter { !present.contains($0.key) }
        guard !histories.isEmpty, !newcomers.isEmpty || !gone.isEmpty else { return [] }
        var heldBy = [UInt64: ProcessIdentity]()
        for (identity, history) in histories {
            for entry in history.firstSeen where heldBy[entry.inode].map({ identity < $0 }) ?? true {
                heldBy[entry.inode] = identity
            }
        }
        func best(_ overlap: [ProcessIdentity: Int]) -> (ProcessIdentity, Int)? {
            overlap.max { ($0.value, $1.key) < ($1.value, $0.key) }.map { ($0.key, $0.value) }
        }
        var moves = [Handover]()
        var continued = Set<ProcessIdentity>()
        for newcomer in newcomers {
            var overlap = [ProcessIdentity: Int]()
            for inode in newcomer.inodes { if let old = heldBy[inode] { overlap[old, default: 0] += 1 } }
            if let (source, shared) = best(overlap), shared * 2 >= newcomer.inodes.count {
                moves.append(Handover(from: source, to: newcomer.details.identity, fromGone: !present.contains(source)))
                continued.insert(source)
            }
        }
        if !gone.isEmpty {
            var holdsNow = [UInt64: ProcessIdentity]()
            for observation in observations {
                for inode in observation.inodes where holdsNow[inode].map({ observation.details.identity < $0 }) ?? true
                {
                    holdsNow[inode] = observation.details.identity
                }
            }
            for (identity, history) in gone where !continued.contains(identity) {
                var overlap = [ProcessIdentity: Int]()
                for entry in history.firstSeen { if let now = holdsNow[entry.inode] { overlap[now, default: 0] += 1 } }
                if let (successor, _) = best(overlap) {
                    moves.append(Handover(from: identity, to: successor, fromGone: true))
                }
            }
        }
        return moves.sorted { ($0.to, $0.from) < ($1.to, $1.from) }
    }

    /// The least-squares slope of count over time, per minute.
    static func slopePerMinute(_ samples: [(time: Double, count: Int)]) -> Double {
        let n = Double(samples.count)
        guard n >= 2 else { return 0 }
        var sumT = 0.0, sumC = 0.0
        for sample in samples { sumT += sample.time; sumC += Double(sample.count) }
        let meanT = sumT / n, meanC = sumC / n
        var covariance = 0.0, variance = 0.0
        for sample in samples {
            let dt = sample.time - meanT
            covariance += dt * (Double(sample.count) - meanC)
            variance += dt * dt
        }
        return variance > 0 ? covariance / variance * 60 : 0
    }
}

extension Array where Element == UInt64 {
    var isSorted: Bool {
        var i = 1
        while i < count { if self[i - 1] > self[i] { return false }; i += 1 }
        return true
    }
}
