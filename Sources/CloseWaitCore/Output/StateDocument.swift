/// StateFile is where the daemon rewrites its StateDocument each tick for `closewaitd status`.
public enum StateFile {
    public static let defaultPath = "/run/closewaitd/state.json"
}

/// StateDocument is the state file's one schema: the daemon builds it from a tick, renders it
/// as JSON, and `closewaitd status` (and the tests) decode it back with the same code. Key
/// names are a stable interface: add, never rename. Decoding distrusts the file: every
/// number is range-checked, every string stays text to be escaped when shown.
public struct StateDocument: Equatable, Sendable {
    public struct Process: Equatable, Sendable {
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
        public var oldestAgeSeconds: Int64
        public var fdOpen: Int
        public var fdLimit: Int64?
        public var exhaustionSeconds: Int64?
        public var topPeer: String?
        public var level: String
        public var reasons: [String]
        /// The rate seen so far, before growth is known (shown, never alerted on).
        public var earlyGrowthPerMinute: Double? = nil
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
    }

    public static let version = 1
    public var daemonPid: Int32
    /// Seconds since the epoch of the tick that wrote it.
    public var updatedAt: Double
    public var interval: Double
    public var ticks: Int
    public var status: String
    public var total: Int
    public var hostLevel: String
    public var processes: [Process]
    /// What the last tick's /proc walk could not read (absent in files from before 0.2).
    public var attribution: AttributionHealth?
    /// What else the last tick could not see, one sentence each (absent before 0.2).
    public var warnings: [String] = []

    /// The document for one tick.
    /// - Parameters:
    ///   - wallTime: seconds since the epoch (for "updated N s ago").
    public init(statuses: [ProcessStatus], firing: [(ProcessIdentity?, AlertReason, AlertLevel)],
                total: Int, status: String, daemonPID: Int32, ticks: Int, wallTime: Double, interval: Double,
                attribution: AttributionHealth? = nil, diagnoses: [ProcessIdentity: (Diagnosis, Evidence)] = [:],
                warnings: [String] = []) {
        self.attribution = attribution
        self.warnings = warnings
        var levels = [ProcessIdentity: (AlertLevel, [String])]()
        var hostLevel: AlertLevel?
        for (identity, reason, level) in firing {
            guard let identity else { hostLevel = max(hostLevel ?? level, level); continue }
            let current = levels[identity] ?? (level, [])
            levels[identity] = (max(current.0, level), current.1 + [reason.rawValue])
        }
        let sorted = statuses.sorted { ($1.count, $0.details.pid) < ($0.count, $1.details.pid) }
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
            return Process(pid: d.pid, startTime: Int64(clamping: d.identity.startTime), comm: d.comm.lossy, exe: d.exe?.lossy,
                           unit: d.unit?.lossy, container: d.container.map(\.fullLabel.lossy),
                           innerPid: d.innerPID, netns: d.netns.map { Int64(clamping: $0) }, closeWait: p.count, growthPerMinute: p.growthPerMinute,
                           oldestAgeSeconds: Int64(saturating: p.oldestAge), fdOpen: d.fdOpen,
                           fdLimit: d.fdLimit.map { Int64(clamping: $0) },
                           exhaustionSeconds: p.predictedExhaustion.map { Int64(saturating: $0) },
                           topPeer: p.topPeer?.description(), level: level?.0.name ?? "ok",
                           reasons: (level?.1 ?? []).sorted(), earlyGrowthPerMinute: p.earlyGrowth?.perMinute,
                           pattern: p.pattern.rawValue, diagnosis: diagnosis?.0.kind.rawValue, diagnosisText: diagnosis?.0.sentence,
                           advice: diagnosis?.0.advice, evidence: diagnosis?.1.summary, ageHistogram: diagnosis?.1.ageHistogram,
                           sharers: d.sharedWith?.count)
        }
    }

    public func json() -> JSONValue {
        .object([
            ("version", .number(Self.version)),
            ("daemonPid", .number(daemonPid)),
            ("updatedAt", .double(updatedAt)),
            ("interval", .double(interval)),
            ("ticks", .number(ticks)),
            ("status", .string(status)),
            ("total", .number(total)),
            ("hostLevel", .string(hostLevel)),
            ("attribution", attribution?.json() ?? .null),
            ("warnings", .array(warnings.map { .string($0) })),
            ("processes", .array(processes.map { p in
                .object([
                    ("pid", .number(p.pid)),
                    ("startTime", .number(p.startTime)),
                    ("comm", .string(p.comm)),
                    ("exe", .optional(p.exe)),
                    ("unit", .optional(p.unit)),
                    ("container", .optional(p.container)),
                    ("innerPid", .optional(p.innerPid)),
                    ("netns", .optional(p.netns)),
                    ("closeWait", .number(p.closeWait)),
                    ("growthPerMinute", p.growthPerMinute.map(JSONValue.double) ?? .null),
                    ("earlyGrowthPerMinute", p.earlyGrowthPerMinute.map(JSONValue.double) ?? .null),
                    ("oldestAgeSeconds", .number(p.oldestAgeSeconds)),
                    ("fdOpen", .number(p.fdOpen)),
                    ("fdLimit", .optional(p.fdLimit)),
                    ("exhaustionSeconds", .optional(p.exhaustionSeconds)),
                    ("topPeer", .optional(p.topPeer)),
                    ("level", .string(p.level)),
                    ("reasons", .array(p.reasons.map(JSONValue.string))),
                    ("pattern", .optional(p.pattern)),
                    ("diagnosis", .optional(p.diagnosis)),
                    ("diagnosisText", .optional(p.diagnosisText)),
                    ("advice", .optional(p.advice)),
                    ("evidence", .optional(p.evidence)),
                    ("ageHistogram", p.ageHistogram.map { .array($0.map { JSONValue.number($0) }) } ?? .null),
                    ("sharers", .optional(p.sharers)),
                ])
            })),
        ])
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

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> StateDocument {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw .json(error) }
        var reader = FieldReader(path: "")
        guard case .object = root else { throw .field("", "not an object") }
        let version = try reader.int(root, "version", 1...1_000_000)
        guard version == Self.version else { throw .field("version", "\(version) is not a version this closewaitd reads") }
        var processes = [Process]()
        guard case let .array(items)? = root["processes"] else { throw .field("processes", "missing or not an array") }
        for (i, item) in items.enumerated() {
            var p = FieldReader(path: "processes[\(i)].")
            processes.append(Process(
                pid: Int32(try p.int(item, "pid", 1...Int(Int32.max))),
                startTime: Int64(try p.int(item, "startTime", 0...Int.max)),
                comm: try p.string(item, "comm"), exe: try p.optionalString(item, "exe"), unit: try p.optionalString(item, "unit"),
                container: try p.optionalString(item, "container"),
                innerPid: try p.optionalInt(item, "innerPid", 1...Int(Int32.max)).map { Int32($0) },
                netns: try p.optionalInt(item, "netns", 0...Int.max).map { Int64($0) },
                closeWait: try p.int(item, "closeWait", 0...Int.max),
                growthPerMinute: try p.optionalDouble(item, "growthPerMinute"),
                oldestAgeSeconds: Int64(try p.int(item, "oldestAgeSeconds", 0...Int.max)),
                fdOpen: try p.int(item, "fdOpen", 0...Int.max),
                fdLimit: try p.optionalInt(item, "fdLimit", 0...Int.max).map(Int64.init),
                exhaustionSeconds: try p.optionalInt(item, "exhaustionSeconds", Int.min...Int.max).map(Int64.init),
                topPeer: try p.optionalString(item, "topPeer"), level: try p.string(item, "level"),
                reasons: try p.strings(item, "reasons"), earlyGrowthPerMinute: try p.optionalDouble(item, "earlyGrowthPerMinute"),
                pattern: try p.optionalString(item, "pattern"), diagnosis: try p.optionalString(item, "diagnosis"),
                diagnosisText: try p.optionalString(item, "diagnosisText"), advice: try p.optionalString(item, "advice"),
                evidence: try p.optionalString(item, "evidence"), ageHistogram: try p.optionalInts(item, "ageHistogram"),
                sharers: try p.optionalInt(item, "sharers", 0...Int.max)))
        }
        var attribution: AttributionHealth?
        if let health = root["attribution"], health != .null {
            let a = FieldReader(path: "attribution.")
            attribution = AttributionHealth(unreadable: try a.int(health, "unreadable", 0...Int.max),
                                            vanished: try a.int(health, "vanished", 0...Int.max),
                                            otherErrors: try a.int(health, "otherErrors", 0...Int.max),
                                            unattributed: try a.int(health, "unattributed", 0...Int.max))
        }
        return StateDocument(daemonPid: Int32(try reader.int(root, "daemonPid", 1...Int(Int32.max))),
                             updatedAt: try reader.double(root, "updatedAt"), interval: try reader.double(root, "interval"),
                             ticks: try reader.int(root, "ticks", 0...Int.max), status: try reader.string(root, "status"),
                             total: try reader.int(root, "total", 0...Int.max), hostLevel: try reader.string(root, "hostLevel"),
                             processes: processes, attribution: attribution,
                             warnings: root["warnings"] == nil ? [] : try reader.strings(root, "warnings"))
    }

    init(daemonPid: Int32, updatedAt: Double, interval: Double, ticks: Int, status: String, total: Int, hostLevel: String,
         processes: [Process], attribution: AttributionHealth?, warnings: [String] = []) {
        self.attribution = attribution
        self.warnings = warnings
        self.daemonPid = daemonPid
        self.updatedAt = updatedAt
        self.interval = interval
        self.ticks = ticks
        self.status = status
        self.total = total
        self.hostLevel = hostLevel
        self.processes = processes
    }

    /// The table `closewaitd status` prints; every text from the file escaped.
    public static func table(_ doc: StateDocument, age: Double) -> String {
        var out = "closewaitd[\(doc.daemonPid)]: \(Escape.line(doc.status)) (updated \(TimeSpan.format(max(0, age))) ago, host \(Escape.line(doc.hostLevel)))\n"
        if let health = doc.attribution, health.degraded {
            out += "warning: \(health.summary); run the daemon with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE\n"
        }
        for warning in doc.warnings { out += "warning: \(Escape.line(warning))\n" }
        guard !doc.processes.isEmpty else { return out + "no process holds CLOSE_WAIT sockets" }
        let containers = doc.processes.contains { $0.container != nil || $0.netns != nil }
        var rows = [["PID"] + (containers ? ["CONTAINER"] : []) + ["UNIT", "COMM", "CLOSE-WAIT", "GROWTH/MIN", "OLDEST", "FDS/LIMIT", "LEVEL", "TOP PEER"]]
        for p in doc.processes {
            let growth = p.growthPerMinute.map { String(growthPerMinute: $0) }
                ?? p.earlyGrowthPerMinute.map { String(growthPerMinute: $0) + " early" } ?? "-"
            var level = p.level
            if !p.reasons.isEmpty { level += " (" + p.reasons.joined(separator: ",") + ")" }
            let container = p.container.map { text -> String in
                var escaped = Escape.bytes(Array(text.utf8))[...]
                // `user@1000.service: podman:ID` for a user's container: the owner stays in front.
                var owner = ""
                if let separator = escaped.firstRange(of: ": ") {
                    owner = String(escaped[..<separator.upperBound])
                    escaped = escaped[separator.upperBound...]
                }
                let runtime = String(escaped.prefix { $0 != ":" }), id = String(escaped.drop { $0 != ":" }.dropFirst())
                return owner + ContainerIdentity.shortLabel(runtime: runtime, id: id) + (p.innerPid.map { " pid \($0)" } ?? "")
            } ?? p.netns.map { "netns \($0)" } ?? "-"
            rows.append([String(p.pid)] + (containers ? [container] : []) + [p.unit.map { Escape.bytes(Array($0.utf8)) } ?? "-",
                         Escape.bytes(Array(p.comm.utf8)) + (p.sharers.map { " (+\($0) sharing)" } ?? ""),
                         String(p.closeWait), growth, TimeSpan.format(Double(p.oldestAgeSeconds)),
                         "\(p.fdOpen)/\(p.fdLimit.map(String.init) ?? "unlimited")", level, p.topPeer ?? "-"])
        }
        out += SnapshotReport.alignedColumns(rows, rightAligned: containers ? [0, 4, 5, 6] : [0, 3, 4, 5]).dropLast(1)
        // Why, for the processes the daemon diagnosed (alerting ones).
        for p in doc.processes {
            guard let kind = p.diagnosis else { continue }
            out += "\n\(p.pid) \(Escape.bytes(Array(p.comm.utf8))): \(Escape.line(kind))"
            if let text = p.diagnosisText { out += " — " + Escape.line(text) }
            if let evidence = p.evidence { out += "\n    evidence: " + Escape.line(evidence) }
            if let advice = p.advice { out += "\n    to fix: " + Escape.line(advice) }
        }
        return out
    }
}

/// Reads typed members of a decoded JSON object, naming the key in every error.
struct FieldReader {
    var path: String

    func missing(_ key: String, _ what: String) -> StateDocument.DecodeError { .field(path + key, what) }

    func int(_ object: JSONValue, _ key: String, _ range: ClosedRange<Int>) throws(StateDocument.DecodeError) -> Int {
        guard let value = try optionalInt(object, key, range) else { throw missing(key, "missing") }
        return value
    }

    func optionalInt(_ object: JSONValue, _ key: String, _ range: ClosedRange<Int>) throws(StateDocument.DecodeError) -> Int? {
        switch object[key] {
        case nil, .null?: return nil
        case let .int(n)?:
            guard let value = Int(exactly: n), range.contains(value) else { throw missing(key, "\(n) is out of range") }
            return value
        default: throw missing(key, "not an integer")
        }
    }

    func double(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> Double {
        guard let value = try optionalDouble(object, key) else { throw missing(key, "missing") }
        return value
    }

    func optionalDouble(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case let .int(n)?: return Double(n)
        case let .double(d)?: return d
        default: throw missing(key, "not a number")
        }
    }

    func string(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> String {
        guard let value = try optionalString(object, key) else { throw missing(key, "missing") }
        return value
    }

    func optionalString(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case let .string(s)?: return s
        default: throw missing(key, "not a string")
        }
    }

    func optionalInts(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> [Int]? {
        guard let value = object[key], value != .null else { return nil }
        guard case let .array(items) = value, items.count <= 64 else { throw missing(key, "not a short array") }
        return try items.map { (item: JSONValue) throws(StateDocument.DecodeError) -> Int in
            guard case let .int(n) = item, n >= 0, let count = Int(exactly: n) else { throw missing(key, "not an array of counts") }
            return count
        }
    }

    func strings(_ object: JSONValue, _ key: String) throws(StateDocument.DecodeError) -> [String] {
        guard case let .array(items)? = object[key] else { throw missing(key, "missing or not an array") }
        var out = [String]()
        for item in items {
            guard case let .string(s) = item else { throw missing(key, "holds a non-string") }
            out.append(s)
        }
        return out
    }
}
