/// StatusLine is the short sentence sent to systemd as STATUS= each tick.
public enum StatusLine {
    public static func render(statuses: [ProcessStatus], alerting: Int, total: Int,
                              health: AttributionHealth = AttributionHealth()) -> String {
        let degraded = health.degraded ? "; " + health.summary : ""
        guard let top = statuses.max(by: { $0.count < $1.count }) else {
            return total == 0 ? "No CLOSE_WAIT sockets; watching." : "\(total) CLOSE_WAIT sockets, no owner known\(degraded)"
        }
        let noun = statuses.count == 1 ? "process" : "processes"
        return "\(statuses.count) \(noun) with CLOSE_WAIT, \(alerting) alerting; max \(top.details.label) \(top.count); total \(total)\(degraded)"
    }
}
