/// StateFile is the document the daemon rewrites each tick under /run/closewaitd/ for
/// `closewaitd status`: the tracked processes with their figures and alert level.
public enum StateFile {
    public static let defaultPath = "/run/closewaitd/state.json"

    /// - Parameters:
    ///   - wallTime: seconds since the epoch (for "updated N s ago").
    public static func render(statuses: [ProcessStatus], firing: [(ProcessIdentity?, AlertReason, AlertLevel)],
                              total: Int, status: String, daemonPID: Int32, ticks: Int, wallTime: Double,
                              interval: Double) -> JSONValue {
        var levels = [ProcessIdentity: (AlertLevel, [String])]()
        var hostLevel: AlertLevel?
        for (identity, reason, level) in firing {
            guard let identity else { hostLevel = max(hostLevel ?? level, level); continue }
            let current = levels[identity] ?? (level, [])
            levels[identity] = (max(current.0, level), current.1 + [reason.rawValue])
        }
        let sorted = statuses.sorted { ($1.count, $0.details.pid) < ($0.count, $1.details.pid) }
        return .object([
            ("version", .number(1)),
            ("daemonPid", .number(daemonPID)),
            ("updatedAt", .double(wallTime)),
            ("interval", .double(interval)),
            ("ticks", .number(ticks)),
            ("status", .string(status)),
            ("total", .number(total)),
            ("hostLevel", .string(hostLevel?.name ?? "ok")),
            ("processes", .array(sorted.map { p in
                let d = p.details
                let level = levels[d.identity]
                return .object([
                    ("pid", .number(d.pid)),
                    ("startTime", .number(Int64(clamping: d.identity.startTime))),
                    ("comm", .string(d.comm.lossy)),
                    ("exe", .optional(d.exe?.lossy)),
                    ("unit", .optional(d.unit?.lossy)),
                    ("closeWait", .number(p.count)),
                    ("growthPerMinute", p.growthPerMinute.map(JSONValue.double) ?? .null),
                    ("oldestAgeSeconds", .number(Int64(saturating: p.oldestAge))),
                    ("fdOpen", .number(d.fdOpen)),
                    ("fdLimit", .optional(d.fdLimit.map { Int64(clamping: $0) })),
                    ("exhaustionSeconds", p.predictedExhaustion.map { .number(Int64(saturating: $0)) } ?? .null),
                    ("topPeer", .optional(p.topPeer?.description)),
                    ("level", .string(level?.0.name ?? "ok")),
                    ("reasons", .array((level?.1 ?? []).sorted().map(JSONValue.string))),
                ])
            })),
        ])
    }
}
