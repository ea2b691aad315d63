/// ProcessObservation is one process's sampled sockets at one tick.
public struct ProcessObservation: Sendable {
    public var details: ProcessDetails
    public var inodes: [UInt64]
    public var peers: [PeerCount]

    public init(details: ProcessDetails, inodes: [UInt64], peers: [PeerCount]) {
        self.details = details
        self.inodes = inodes
        self.peers = peers
    }

    public init(_ entry: ProcessEntry) {
        self.init(details: entry.details, inodes: entry.inodes, peers: entry.peers)
    }
}

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
    /// samples), for people to read ("+1200/min over 25 s, early"); alerts never use it.
    public var earlyGrowth: (perMinute: Double, seconds: Double)? = nil
    /// How the count moved over the window (`unknown` before half a window).
    public var pattern: GrowthPattern = .unknown

    public var topPeer: PeerCount? { peers.first }
}

/// Tracker keeps per-process history between ticks: counts over a window, the first-seen time
/// of every CLOSE_WAIT socket, growth and fd headroom. Pure: time comes in as a value.
public struct Tracker: Sendable {
    public var window: Double
    struct History: Sendable {
        var samples: [(time: Double, count: Int)] = []
        /// (inode, first seen), ascending by inode: merged with each tick's sorted inodes,
        /// 16 bytes a socket and no hashing.
        var firstSeen: [(inode: UInt64, seen: Double)] = []
        var since: Double
    }
    private(set) var histories: [ProcessIdentity: History] = [:]
    /// The hand-overs found by the last update: a process that is gone and a new one holding
    /// its sockets (a leaker that forks and exits, sockets passed with SCM_RIGHTS before the
    /// sender exited). The new one continues the old one's history (counts, first-seen times),
    /// and the policy moves its holds and firing alerts (`AlertPolicy.handOver`).
    public private(set) var handovers: [(from: ProcessIdentity, to: ProcessIdentity)] = []

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
    public mutating func update(now: Double, observations: [ProcessObservation]) -> [ProcessStatus] {
        var next = [ProcessIdentity: History]()
        next.reserveCapacity(observations.count)
        var statuses = [ProcessStatus]()
        statuses.reserveCapacity(observations.count)
        let inherited = predecessors(observations)
        handovers = inherited.map { (from: $0.value, to: $0.key) }.sorted { $0.to < $1.to }
        for observation in observations {
            let identity = observation.details.identity
            var history = histories[identity] ?? inherited[identity].flatMap { histories[$0] } ?? History(since: now)
            let inodes = observation.inodes.isSorted ? observation.inodes : observation.inodes.sorted()
            var firstSeen = [(inode: UInt64, seen: Double)]()
            firstSeen.reserveCapacity(inodes.count)
            var oldest = now
            var j = 0
            let previous = history.firstSeen
            for inode in inodes {
                while j < previous.count && previous[j].inode < inode { j += 1 }
                let seen = j < previous.count && previous[j].inode == inode ? previous[j].seen : now
                firstSeen.append((inode, seen))
                oldest = min(oldest, seen)
            }
            history.firstSeen = firstSeen
            history.samples.append((now, observation.inodes.count))
            // Keep the samples inside the window plus the last one before it, the baseline.
            if let firstInside = history.samples.firstIndex(where: { $0.time >= now - window }), firstInside > 1 {
                history.samples.removeFirst(firstInside - 1)
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
            var exhaustion: Double?
            if let growth, growth > 0, let limit = observation.details.fdLimit {
                let headroom = Double(limit) - Double(observation.details.fdOpen)
                exhaustion = max(0, headroom) / growth * 60
            }
            statuses.append(ProcessStatus(details: observation.details, count: count, peers: observation.peers,
                                          growthPerMinute: growth, oldestAge: now - oldest, since: history.since,
                                          predictedExhaustion: exhaustion, earlyGrowth: early,
                                          pattern: GrowthPattern.of(history.samples, window: window)))
            next[identity] = history
        }
        histories = next
        return statuses
    }
}

extension Tracker {
    /// For each process seen for the first time, the gone process (tracked last tick, absent
    /// now) that held the most of its sockets, if any. Costs nothing on a tick where no
    /// tracked process went away or none is new.
    func predecessors(_ observations: [ProcessObservation]) -> [ProcessIdentity: ProcessIdentity] {
        let present = Set(observations.map(\.details.identity))
        let newcomers = observations.filter { histories[$0.details.identity] == nil }
        guard !newcomers.isEmpty else { return [:] }
        var heldBy = [UInt64: ProcessIdentity]()
        for (identity, history) in histories where !present.contains(identity) {
            for entry in history.firstSeen { heldBy[entry.inode] = identity }
        }
        guard !heldBy.isEmpty else { return [:] }
        var result = [ProcessIdentity: ProcessIdentity]()
        for newcomer in newcomers {
            var overlap = [ProcessIdentity: Int]()
            for inode in newcomer.inodes { if let old = heldBy[inode] { overlap[old, default: 0] += 1 } }
            if let best = overlap.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) { result[newcomer.details.identity] = best.key }
        }
        return result
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
