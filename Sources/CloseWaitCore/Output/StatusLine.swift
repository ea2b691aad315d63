/// StatusLine is the short sentence sent to systemd as STATUS= each tick.
public enum StatusLine {
    /// `notes`: what else the tick could not see (namespaces not read, sockets without an
    /// owner), each appended after a semicolon.
    public static func render(
        statuses: [ProcessStatus], alerting: Int, total: Int,
        health: AttributionHealth = AttributionHealth(), notes: [String] = []
    ) -> String {
        let degraded = (health.degraded ? "; " + health.summary : "") + notes.map { "; " + $0 }.joined()
        guard let top = statuses.max(by: { $0.count < $1.count }) else {
            if total == 0 {
                return degraded.isEmpty ? "No CLOSE_WAIT sockets; watching." : "No CLOSE_WAIT sockets seen\(degraded)"
            }
            return "\(total) CLOSE_WAIT sockets, no owner known\(degraded)"
        }
        let noun = statuses.count == 1 ? "process" : "processes"
        return
            "\(statuses.count) \(noun) with CLOSE_WAIT, \(alerting) alerting; max \(top.details.label) \(top.count); total \(total)\(degraded)"
    }
}
