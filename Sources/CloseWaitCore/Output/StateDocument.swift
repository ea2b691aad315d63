/// StateFile is where the daemon rewrites its StateDocument each tick for `closewaitd status`.
public enum StateFile {
    public static let defaultPath = "/run/closewaitd/state.json"
}

/// StateDocument is the state file's one schema: the daemon builds it from a tick, renders it
/// as JSON, and `closewaitd status` (and the tests) decode it back with the same code. Key
/// names are a stable interface: add, never rename. Decoding distrusts the file: every
/// number is range-checked, every string stays text to be escaped when shown.
public struct StateDocument: Codable, Equatable, Sendable {
    /// One process; its stored properties are its keys, in the order written.
    public struct Process: Codable, Equatable, Sendable {
        public var pid: Int32
        public var startTime: Int64
        public var comm: String
        public var exe: String?
        public var unit: String?
        /// `runtime:id` of its container, nil on the host.
        public var container: String?
        public var innerPid: Int32?
        public var netns: Int64?
        public var closeWait: Int
        public var growthPerMinute: Double?
        /// The rate seen so far, before growth is known (shown, never alerted on).
        public var earlyGrowthPerMinute: Double? = nil
        public var oldestAgeSeconds: Int64
        public var fdOpen: Int
        public var fdLimit: Int64?
        public var exhaustionSeconds: Int64?
        public var topPeer: String?
        public var level: String
        public var reasons: [String]
        /// How the count moved over the window (GrowthPattern's raw value).
        public var pattern: String? = nil
        /// For alerting processes the daemon looked at: the class (Diagnosis.Kind), its
        /// sentence, what to change, and the evidence in one line.
        public var diagnosis: String? = nil
        public var diagnosisText: String? = nil
        public var advice: String? = nil
        public var evidence: String? = nil
        /// Socket counts per `Evidence.ageBuckets`, for diagnosed processes.
        public var ageHistogram: [Int]? = nil
        /// Other processes holding exactly its sockets, tracked as it (forked children).
        public var sharers: Int? = nil
        /// How much history stands behind the diagnosis (Diagnosis.Confidence), for a class.
        public var diagnosisConfidence: String? = nil
        /// Sockets that entered and left CLOSE_WAIT over the tracker's history.
        public var arrived: Int? = nil
        public var left: Int? = nil
        /// The client library the process shows and its fix (`LibraryHint.sentence`).
        public var libraryHint: String? = nil
        /// Sockets that left CLOSE_WAIT by a reset while the process still holds their fds.
        public var heldAfterReset: Int? = nil
        /// Its container's name and Kubernetes pod, from the runtime's state.
        public var containerName: String? = nil
        public var podName: String? = nil
        public var podNamespace: String? = nil
    }

    public static let version = 1
    /// The schema's version, written first and read first.
    public var version = StateDocument.version
    public var daemonPid: Int32
    /// Seconds since the epoch of the tick that wrote it.
    public var updatedAt: Double
    public var interval: Double
    public var ticks: Int
    public var status: String
    public var total: Int
    public var hostLevel: String
    /// What the last tick's /proc walk could not read (absent in files from before 0.2).
    public var attribution: AttributionHealth?
    /// What else the last tick could not see, one sentence each (absent before 0.2).
    @AbsentIsEmpty public var warnings: [String] = []
    public var processes: [Process]
    /// Which scanner the last tick used, and why not eBPF (`ScannerStatus.summary`; absent
    /// before 0.3).
    public var scanner: String?

    /// The document for one tick.
    /// - Parameters:
    ///   - statuses: in report order (`ProcessStatus.reportOrder`), as a tick gives them;
    ///     sorted here otherwise.
    ///   - wallTime: seconds since the epoch (for "updated N s ago").
    public init(
        statuses: [ProcessStatus], firing: [(ProcessIdentity?, AlertReason, AlertLevel)],
        total: Int, status: String, daemonPID: Int32, ticks: Int, wallTime: Double, interval: Double,
        attribution: AttributionHealth? = nil, diagnoses: [ProcessIdentity: (Diagnosis, Evidence)] = [:],
        warnings: [String] = [], scanner: String? = nil
    ) {
        self.attribution = attribution
        self.warnings = warnings
        self.scanner = scanner
        var levels = [ProcessIdentity: (AlertLevel, [String])]()
        var hostLevel: AlertLevel?
        for (identity, reason, level) in firing {
            guard let identity else { hostLevel = max(hostLevel ?? level, level); continue }
            let current = levels[identity] ?? (level, [])
            levels[identity] = (max(current.0, level), current.1 + [reason.rawValue])
        }
        let sorted = ProcessStatus.inReportOrder(statuses)
        daemonPid = daemonPID
        updatedAt = wallTime
        self.interval = interval
        self.ticks = ticks
        self.status = status
        self.total = total
        self.hostLevel = hostLevel?.name ?? "ok"
        processes = sorted.map { p in
            let d = p.details
            let level = levels[d.identity]
            let diagnosis = diagnoses[d.identity]
            return Process(
                pid: d.pid, startTime: Int64(clamping: d.identity.startTime), comm: d.comm.lossy, exe: d.exe?.lossy,
                unit: d.unit?.lossy, container: d.container.map(\.fullLabel.lossy),
                innerPid: d.innerPID, netns: d.netns.map { Int64(clamping: $0) }, closeWait: p.count,
                growthPerMinute: p.growthPerMinute, earlyGrowthPerMinute: p.earlyGrowth?.perMinute,
                oldestAgeSeconds: Int64(saturating: p.oldestAge), fdOpen: d.fdOpen,
                fdLimit: d.fdLimit.map { Int64(clamping: $0) },
                exhaustionSeconds: p.predictedExhaustion.map { Int64(saturating: $0) },
                topPeer: p.topPeer?.description(), level: level?.0.name ?? "ok",
                reasons: (level?.1 ?? []).sorted(), pattern: p.pattern.rawValue,
                diagnosis: diagnosis?.0.kind.rawValue, diagnosisText: diagnosis?.0.sentence,
                advice: diagnosis?.0.advice, evidence: diagnosis?.1.summary,
                ageHistogram: diagnosis?.1.ageHistogram, sharers: d.sharedWith?.count,
                diagnosisConfidence: diagnosis.flatMap { $0.0.kind == .unknown ? nil : $0.0.confidence.rawValue },
                arrived: p.flows.arrived, left: p.flows.left, libraryHint: diagnosis?.0.hint?.sentence,
                heldAfterReset: p.heldAfterReset,
                containerName: d.container.flatMap { $0.hasOwnName ? $0.name?.lossy : nil },
                podName: d.container?.podName?.lossy, podNamespace: d.container?.podNamespace?.lossy)
        }
    }

    /// The document as JSON, every key present (null when absent).
    public func json() -> JSONValue {
        // Strings, Doubles and integers that fit Int64: the encoder has nothing to refuse.
        (try? JSONValueEncoder().encode(self)) ?? .null
    }

    /// DecodeError names the key that was missing or out of range.
    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case json(JSONParser.Error)
        case field(String, String)

        public var description: String {
            switch self {
            case let .json(error): "\(error)"
            case let .field(key, what): "\(key): \(what)"
            }
        }
    }

    /// Reads a state file: the version first (a newer schema is refused, not misread), then
    /// the document, then the ranges of its numbers.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> StateDocument {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw .json(error) }
        guard case .object = root else { throw .field("", "not an object") }
        struct Versioned: Decodable { var version: Int }
        let document: StateDocument
        do {
            let version = try JSONValueDecoder().decode(Versioned.self, from: root).version
            guard version == Self.version else {
                throw DecodeError.field("version", "\(version) is not a version this closewaitd reads")
            }
            document = try JSONValueDecoder().decode(StateDocument.self, from: root)
        } catch let failure as JSONValueDecoder.Failure {
            throw .field(failure.path, failure.what)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw .field("", "\(error)")
        }
        try document.checkRanges()
        return document
    }

    /// What the types do not say: counts are not negative, pids are positive.
    func checkRanges() throws(DecodeError) {
        func check<N: BinaryInteger>(_ path: String, _ value: N?, atLeast minimum: N) throws(DecodeError) {
            if let value, value < minimum { throw .field(path, "\(value) is out of range") }
        }
        try check("daemonPid", daemonPid, atLeast: 1)
        try check("ticks", ticks, atLeast: 0)
        try check("total", total, atLeast: 0)
        if let a = attribution {
            for (key, value) in [
                ("unreadable", a.unreadable), ("vanished", a.vanished), ("otherErrors", a.otherErrors),
                ("unattributed", a.unattributed),
            ] {
                try check("attribution." + key, value, atLeast: 0)
            }
        }
        for (i, p) in processes.enumerated() {
            let at = "processes[\(i)]."
            try check(at + "pid", p.pid, atLeast: 1)
            try check(at + "innerPid", p.innerPid, atLeast: 1)
            let counts: [(String, Int64?)] = [
                ("startTime", p.startTime), ("netns", p.netns), ("closeWait", Int64(p.closeWait)),
                ("oldestAgeSeconds", p.oldestAgeSeconds), ("fdOpen", Int64(p.fdOpen)), ("fdLimit", p.fdLimit),
                ("sharers", p.sharers.map(Int64.init)), ("arrived", p.arrived.map(Int64.init)),
                ("left", p.left.map(Int64.init)), ("heldAfterReset", p.heldAfterReset.map(Int64.init)),
            ]
            for (key, value) in counts { try check(at + key, value, atLeast: 0) }
            if let histogram = p.ageHistogram {
                guard histogram.count <= 64 else { throw .field(at + "ageHistogram", "not a short array") }
                guard histogram.allSatisfy({ $0 >= 0 }) else {
                    throw .field(at + "ageHistogram", "not an array of counts")
                }
            }
        }
    }
}
