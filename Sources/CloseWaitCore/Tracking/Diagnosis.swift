/// How a process's CLOSE_WAIT count moved over the tracker window.
public enum GrowthPattern: String, Sendable, Equatable {
    /// Rising through the window, not in one jump.
    case steady
    /// Rising, but most of the rise came in one fifth of the window.
    case bursts
    /// Flat: the count stays within a small band.
    case plateau
    /// Falling: the process is closing them.
    case falling
    /// Not yet half a window of history.
    case unknown

    /// The pattern of (time, count) samples spanning at least `window / 2` seconds.
    public static func of(_ samples: [(time: Double, count: Int)], window: Double) -> GrowthPattern {
        guard let first = samples.first, let last = samples.last, last.time - first.time >= window / 2,
            samples.count >= 3
        else {
            return .unknown
        }
        let counts = samples.map(\.count)
        let low = counts.min()!, high = counts.max()!
        let mean = Double(counts.reduce(0, +)) / Double(counts.count)
        if Double(high - low) <= max(2, 0.1 * mean) { return .plateau }
        if last.count < first.count && high - last.count >= (high - low) / 2 { return .falling }
        // Rise per fifth of the span: one fifth holding most of it is a burst.
        let span = last.time - first.time
        var rise = [Double](repeating: 0, count: 5)
        for i in 1..<samples.count {
            let d = samples[i].count - samples[i - 1].count
            guard d > 0 else { continue }
            let bin = min(4, Int((samples[i].time - first.time) / span * 5))
            rise[bin] += Double(d)
        }
        let total = rise.reduce(0, +)
        if total > 0, rise.max()! >= 0.7 * total { return .bursts }
        return last.count > first.count ? .steady : .plateau
    }
}

/// What the kernel shows about one peer of a process: its CLOSE_WAIT sockets and whether the
/// process has live connections to the same peer.
public struct PeerEvidence: Sendable, Equatable {
    public var peer: Endpoint
    public var closeWait: Int
    /// ESTABLISHED connections of the same process to the same peer (nil: not looked up).
    public var established: Int?
    /// CLOSE_WAIT sockets whose receive queue still holds data the peer sent, and how many
    /// bytes in all. (The kernel counts the peer's FIN as one byte of Recv-Q until the
    /// application reads the end of the stream, so data is Recv-Q − 1.)
    public var unread: Int
    public var unreadBytes: UInt64
    /// CLOSE_WAIT sockets whose application already read the end of the stream (Recv-Q 0)
    /// and still did not close them.
    public var endRead: Int = 0
    /// CLOSE_WAIT sockets whose queue holds only the peer's FIN (Recv-Q 1): the application
    /// never came back to them after reading its response.
    public var finOnly: Int { max(0, closeWait - unread - endRead) }
    /// CLOSE_WAIT sockets with bytes still queued to send.
    public var unsent: Int
    /// The local ports of the CLOSE_WAIT sockets, lowest and highest.
    public var localPorts: ClosedRange<UInt16>?

    public init(
        peer: Endpoint, closeWait: Int, established: Int?, unread: Int, unreadBytes: UInt64, unsent: Int,
        localPorts: ClosedRange<UInt16>?
    ) {
        self.peer = peer
        self.closeWait = closeWait
        self.established = established
        self.unread = unread
        self.unreadBytes = unreadBytes
        self.unsent = unsent
        self.localPorts = localPorts
    }

    /// Evidence from one process's sockets: its CLOSE_WAIT records to `peer` and its
    /// ESTABLISHED ones (nil when not looked up).
    public init(peer: Endpoint, closeWait: [SocketRecord], established: [SocketRecord]?) {
        let mine = closeWait.filter { $0.remote == peer }
        let ports = mine.map(\.local.port)
        self.init(
            peer: peer, closeWait: mine.count, established: established.map { $0.filter { $0.remote == peer }.count },
            unread: mine.filter { $0.recvQ > 1 }.count,
            unreadBytes: mine.reduce(0) { $0 + UInt64(max(1, $1.recvQ) - 1) },
            unsent: mine.filter { $0.sendQ > 0 }.count,
            localPorts: ports.isEmpty ? nil : ports.min()!...ports.max()!)
        endRead = mine.filter { $0.recvQ == 0 }.count
    }
}

/// Evidence is everything the classification looks at, for one process.
public struct Evidence: Sendable, Equatable {
    public var closeWait: Int
    /// The top peers (by CLOSE_WAIT count), at most a few.
    public var peers: [PeerEvidence]
    /// Socket ages in seconds (since first seen): oldest, median, newest.
    public var ages: (oldest: Double, median: Double, newest: Double)?
    public var growthPerMinute: Double?
    public var pattern: GrowthPattern
    /// Sockets by age: under 1 min, 1–10 min, 10 min–1 h, 1 h–1 d, a day or more.
    public var ageHistogram: [Int]?
    /// What the sockets did over the tracker's history (arrived, left), from the tracker.
    public var flows = ProcessStatus.Flows()
    /// The rate so far, before growth is known.
    public var earlyGrowthPerMinute: Double? = nil
    /// Seconds since the kernel was looked at for this evidence (0: this tick).
    public var lookedSecondsAgo = 0.0
    /// What the process showed of its client library at the look.
    public var clues = RuntimeClues()

    public static let ageBuckets: [(label: String, below: Double)] = [
        ("<1min", 60), ("1-10min", 600), ("10min-1h", 3600), ("1h-1d", 86400), (">=1d", .infinity),
    ]

    public init(
        closeWait: Int, peers: [PeerEvidence], ages: (oldest: Double, median: Double, newest: Double)?,
        growthPerMinute: Double?, pattern: GrowthPattern, ageHistogram: [Int]? = nil
    ) {
        self.closeWait = closeWait
        self.peers = peers
        self.ages = ages
        self.growthPerMinute = growthPerMinute
        self.pattern = pattern
        self.ageHistogram = ageHistogram
    }

    /// Counts of `ages` (seconds) per `ageBuckets`; nil when empty.
    public static func histogram(ages: [Double]) -> [Int]? {
        guard !ages.isEmpty else { return nil }
        var counts = [Int](repeating: 0, count: ageBuckets.count)
        for age in ages { counts[ageBuckets.firstIndex { age < $0.below } ?? ageBuckets.count - 1] += 1 }
        return counts
    }

    public static func == (a: Evidence, b: Evidence) -> Bool {
        a.closeWait == b.closeWait && a.peers == b.peers && a.growthPerMinute == b.growthPerMinute
            && a.pattern == b.pattern
            && a.ageHistogram == b.ageHistogram && a.flows == b.flows
            && a.earlyGrowthPerMinute == b.earlyGrowthPerMinute
            && a.lookedSecondsAgo == b.lookedSecondsAgo && a.clues == b.clues
            && a.ages?.oldest == b.ages?.oldest && a.ages?.median == b.ages?.median && a.ages?.newest == b.ages?.newest
    }

    /// Oldest, median and newest of `ages` (seconds); nil when empty.
    public static func summarize(ages: [Double]) -> (oldest: Double, median: Double, newest: Double)? {
        guard !ages.isEmpty else { return nil }
        let sorted = ages.sorted()
        return (sorted.last!, sorted[sorted.count / 2], sorted.first!)
    }

    /// Takes the tracker's side from a status: count, growth, pattern and flows.
    public mutating func refresh(from status: ProcessStatus) {
        closeWait = status.count
        growthPerMinute = status.growthPerMinute
        earlyGrowthPerMinute = status.earlyGrowth?.perMinute
        pattern = status.pattern
        flows = status.flows
    }

    public var unread: Int { peers.reduce(0) { $0 + $1.unread } }
    public var endRead: Int { peers.reduce(0) { $0 + $1.endRead } }
    /// Recv-Q 1: only the peer's FIN queued.
    public var finOnly: Int { peers.reduce(0) { $0 + $1.finOnly } }
    public var unreadBytes: UInt64 { peers.reduce(0) { $0 + $1.unreadBytes } }
    var peersCloseWait: Int { peers.reduce(0) { $0 + $1.closeWait } }

    /// One line for the journal field CLOSEWAIT_EVIDENCE and `status`.
    public var summary: String {
        var parts = ["\(closeWait) CLOSE_WAIT"]
        if let g = growthPerMinute {
            parts.append(String(growthPerMinute: g) + "/min, " + pattern.rawValue)
        } else {
            parts.append("growth \(pattern.rawValue)")
        }
        if growthPerMinute == nil, let early = earlyGrowthPerMinute {
            parts.append(String(growthPerMinute: early) + "/min so far")
        }
        if flows.seconds > 0 {
            parts.append(
                "\(flows.arrived) arrived, \(flows.left) left over \(TimeSpan.format(flows.seconds.rounded()))")
        }
        let looked = peersCloseWait
        parts.append("\(unread) of \(looked) with unread bytes (\(unreadBytes) B), \(finOnly) with only the FIN queued")
        for p in peers.prefix(3) {
            let live = p.established.map { "\($0) ESTABLISHED" } ?? "ESTABLISHED not looked up"
            let ports = p.localPorts.map { " from ports \($0.lowerBound)-\($0.upperBound)" } ?? ""
            parts.append(
                "\(p.peer): \(p.closeWait) CLOSE_WAIT (\(p.endRead) with the end of stream read), \(live)\(ports)")
        }
        if let ages {
            parts.append(
                "ages "
                    + [ages.oldest, ages.median, ages.newest].map { TimeSpan.format(($0).rounded()) }.joined(
                        separator: "/") + " (oldest/median/newest)")
        }
        if lookedSecondsAgo >= 1 { parts.append("kernel looked at \(TimeSpan.format(lookedSecondsAgo.rounded())) ago") }
        return parts.joined(separator: "; ")
    }
}

extension String {
    /// A signed rate with one decimal ("+12.0", "-3.5"), as tables and evidence show growth;
    /// saturating (`AlertMessage.fixed`), so any Double prints.
    init(growthPerMinute g: Double) {
        self = (g >= 0 ? "+" : "") + AlertMessage.fixed(g, 1)
    }
}

/// Diagnosis is a class of bug with the evidence for it and what to change; `unknown` when the
/// evidence does not fit one. Pure: evidence in, words out. A class is said as soon as the
/// evidence is enough, with a confidence that grows with the history behind it, and never
/// against the evidence (sockets that leave CLOSE_WAIT are not abandoned; a flat set is not a
/// climb).
public struct Diagnosis: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case abandonedConnections = "abandoned-connections"
        case idlePool = "idle-pool"
        case unreadResponses = "unread-responses"
        case unknown

        /// What to change, one line per class: the same text in the journal, `explain`,
        /// `status` and the state file.
        public var advice: String {
            switch self {
            case .abandonedConnections:
                "Reuse one client/connection manager for the process's life instead of one per request, and close what you create (client.close(), try-with-resources); or send `Connection: close` when you mean one-shot requests."
            case .idlePool:
                "Enable idle-connection eviction or validation in the pool (evict idle connections, check before reuse), and keep the pool's idle timeout shorter than the server's keep-alive timeout."
            case .unreadResponses:
                "Read every response body to its end, or close the response/stream when you stop reading (e.g. close the body in a finally block); a connection with unread data cannot return to the pool and is never closed."
            case .unknown:
                "Look at where the code opens connections to the top peer and at every path (errors, timeouts) that drops one without closing it; `closewaitd explain` shows the evidence."
            }
        }
    }

    /// How much history stands behind a class: `low` a few ticks and a handful of sockets,
    /// `medium` half a minute and ten sockets, `high` half the tracker window.
    public enum Confidence: String, Sendable, CaseIterable, Comparable {
        case low, medium, high
        public static func < (a: Confidence, b: Confidence) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public var kind: Kind
    /// The first sentence an operator reads: what kind of bug, and the evidence for it.
    public var sentence: String
    /// What to change, in general terms (`Kind.advice`).
    public var advice: String { kind.advice }
    public var confidence = Confidence.low
    /// What the confidence rests on ("40s of history, 38 sockets arrived, none left").
    public var basis = ""
    /// The client library the process shows, with its fix for this class (a hint).
    public var hint: LibraryHint? = nil

    /// Fewer sockets than this are too few to tell a pattern from chance.
    public static let minimumSockets = 3

    /// What the receive queues say, as three facts: Recv-Q 1 is only the peer's FIN (the
    /// application never came back to the socket after its response), 0 the end of stream
    /// read (it read to the end and never closed), more than 1 data left unread.
    static func queues(_ e: Evidence) -> String {
        var facts = [String]()
        if e.finOnly > 0 {
            facts.append("\(e.finOnly) never read again after the response (Recv-Q 1: the peer's FIN unread)")
        }
        if e.endRead > 0 { facts.append("\(e.endRead) read to the end of stream and never closed (Recv-Q 0)") }
        if e.unread > 0 { facts.append("\(e.unread) with \(e.unreadBytes) bytes of data unread (Recv-Q > 1)") }
        return "of \(e.peersCloseWait) looked at, " + facts.joined(separator: ", ")
    }

    public static func classify(_ e: Evidence) -> Diagnosis {
        var diagnosis = classifyCause(e)
        diagnosis.hint = LibraryHint.from(e.clues, kind: diagnosis.kind)
        return diagnosis
    }

    static func classifyCause(_ e: Evidence) -> Diagnosis {
        let looked = max(1, e.peersCloseWait)
        let unreadShare = Double(e.unread) / Double(looked)
        let established = e.peers.compactMap(\.established)
        let liveToPeers = established.reduce(0, +)
        let allLookedUp = !e.peers.isEmpty && established.count == e.peers.count
        let f = e.flows
        let growth = e.growthPerMinute ?? e.earlyGrowthPerMinute
        guard e.closeWait >= minimumSockets, !e.peers.isEmpty else {
            return unknown("only \(e.closeWait) CLOSE_WAIT socket(s): too few to tell a pattern")
        }
        let basis = [
            f.seconds > 0 ? "\(TimeSpan.format(f.seconds.rounded())) of history" : nil,
            "\(f.arrived) socket(s) arrived and \(f.left == 0 ? "none" : String(f.left)) left",
            "\(e.peersCloseWait) looked at",
        ].compactMap { $0 }.joined(separator: ", ")
        let confidence: Confidence =
            e.pattern != .unknown && looked >= 10
            ? .high : (f.seconds >= 30 && (f.arrived >= 10 || looked >= 10) ? .medium : .low)
        func said(_ kind: Kind, _ sentence: String, _ at: Confidence? = nil) -> Diagnosis {
            Diagnosis(kind: kind, sentence: sentence, confidence: at ?? confidence, basis: basis)
        }
        let rate = growth.map { String(growthPerMinute: $0) + "/min" } ?? "rising"
        // Most sockets still hold bytes the peer sent: the application stopped reading.
        if unreadShare > 0.5 {
            return said(
                .unreadResponses,
                "Responses not read to the end: \(e.unread) of \(looked) CLOSE_WAIT sockets still hold \(e.unreadBytes) unread bytes the peer sent before closing.",
                looked >= 10 ? max(confidence, .medium) : confidence)
        }
        // What arrives stays: sockets keep entering CLOSE_WAIT and none leaves while the
        // process lives. In-flight requests keep a few live connections to the peer; fewer
        // than the leaked ones, they are new connections, not a pool holding its own.
        let climbing =
            (growth ?? 0) > 0 && f.arrived >= minimumSockets && f.nothingLeaves
            && e.pattern != .plateau && e.pattern != .falling
        if climbing && unreadShare > 0.2 {
            return said(
                .unreadResponses,
                "Responses never closed: sockets keep entering CLOSE_WAIT (\(rate)) and none is closed; \(queues(e)): bodies are left unconsumed and the responses never closed, so the connections never return to the pool."
            )
        }
        let quiet = unreadShare <= 0.2
        // A steady climb over half a window with no live connection at all: said as a climb.
        if e.pattern == .steady, quiet, allLookedUp, liveToPeers == 0, f.nothingLeaves {
            return said(
                .abandonedConnections,
                "Abandoned connections: a steady climb (\(String(growthPerMinute: e.growthPerMinute ?? 0))/min), receive queues empty, and no live connection to \(e.peers[0].peer) is kept: each request seems to open a new connection (or client) that is never closed."
            )
        }
        if climbing, allLookedUp, liveToPeers < e.closeWait {
            let inFlight =
                liveToPeers == 0
                ? "no live connection to \(e.peers[0].peer) is kept"
                : "only \(liveToPeers) live connection(s) to \(e.peers[0].peer) (requests in flight)"
            return said(
                .abandonedConnections,
                "Abandoned connections: sockets keep entering CLOSE_WAIT (\(rate)) and none is ever closed; \(queues(e)); \(inFlight): each request seems to open a new connection (or client) that is never closed."
            )
        }
        switch e.pattern {
        case .plateau where quiet:
            let live =
                established.isEmpty
                ? ""
                : (liveToPeers > 0
                    ? ", \(liveToPeers) live connection(s) to the same peer" : ", no live connection to the peer")
            let turnover = f.left > 0 ? "; the pool turns them over (\(f.left) left, \(f.arrived) arrived)" : ""
            return said(
                .idlePool,
                "Idle pool keeping closed connections: the count holds flat at \(e.closeWait) (growth \(String(growthPerMinute: e.growthPerMinute ?? 0))/min), receive queues empty\(live)\(turnover): a connection pool keeps connections the server closed and does not evict them."
            )
        case .unknown:
            return unknown("not enough history yet to tell a climb from a plateau (\(basis))")
        default:
            var why =
                "the evidence fits no single class (pattern \(e.pattern.rawValue), \(e.unread) of \(looked) with unread bytes"
            if !established.isEmpty { why += ", \(liveToPeers) live connection(s) to the same peers" }
            if f.left > 0 { why += ", \(f.left) socket(s) left CLOSE_WAIT" }
            return unknown(why + ")")
        }
    }

    static func unknown(_ why: String) -> Diagnosis {
        Diagnosis(kind: .unknown, sentence: "Cause not determined: \(why).")
    }

    /// The sentence with its confidence, as alerts and `explain` say it.
    public var sentenceWithConfidence: String {
        kind == .unknown ? sentence : "\(sentence) (confidence \(confidence.rawValue): \(basis))"
    }
}
