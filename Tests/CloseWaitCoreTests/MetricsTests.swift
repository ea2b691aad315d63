@testable import CloseWaitCore
import Testing

/// The Prometheus text rendering of one tick (issue 11): names, labels, escaping, the cap.
@Suite struct MetricsTests {
    static func status(_ pid: Int32, _ count: Int, comm: String = "java") -> ProcessStatus {
        let o = observation(pid: pid, inodes: (0..<count).map { UInt64($0 + 1) }, comm: comm)
        return ProcessStatus(
            details: o.details, count: count, peers: o.peers, growthPerMinute: 12, oldestAge: 90,
            since: 0, predictedExhaustion: 600)
    }

    @Test func rendersEveryFamilyWithTheProcessLabels() {
        let statuses = [Self.status(42, 120), Self.status(43, 3, comm: "curl")]
        let text = Metrics.render(
            statuses: statuses, firing: [(statuses[0].details.identity, .count, .warning), (nil, .total, .critical)],
            total: 130,
            health: Metrics.Health(lastSuccessfulTick: 1_764_126_000, samplerFailures: 2, reloadsSucceeded: 1),
            version: "0.1.0")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("closewaitd_build_info{version=\"0.1.0\"} 1"))
        #expect(lines.contains("closewaitd_close_wait_sockets 130"))
        #expect(
            lines.contains(
                "closewaitd_process_close_wait_sockets{pid=\"42\",comm=\"java\",unit=\"orders.service\",container_runtime=\"\",container_id=\"\",container=\"\",pod=\"\",namespace=\"\"} 120"
            ))
        #expect(
            lines.contains {
                $0.hasPrefix("closewaitd_alert_firing{pid=\"42\"")
                    && $0.hasSuffix("reason=\"count\",level=\"warning\"} 1")
            })
        #expect(lines.contains("closewaitd_alert_firing{reason=\"total\",level=\"critical\"} 1"))
        #expect(
            lines.contains {
                $0.hasPrefix("closewaitd_process_peer_close_wait_sockets{pid=\"42\"")
                    && $0.contains("peer=\"10.0.0.5:8080\",netns=\"\"}")
            })
        #expect(
            !lines.contains { $0.hasPrefix("closewaitd_process_peer_close_wait_sockets{pid=\"43\"") },
            "peers only for alerting processes")
        #expect(lines.contains("closewaitd_sampler_failures_total 2"))
        #expect(lines.contains("closewaitd_last_successful_tick_timestamp_seconds 1764126000"))
        #expect(lines.contains("closewaitd_config_reloads_total{outcome=\"success\"} 1"))
        #expect(lines.contains("# TYPE closewaitd_sampler_failures_total counter"))
    }

    @Test func hostileNamesStayOneLabelValue() {
        let text = Metrics.render(
            statuses: [Self.status(7, 5, comm: "a\"b\\c\nd\u{1b}")], firing: [], total: 5,
            health: Metrics.Health(), version: "0.1.0")
        let line = text.split(separator: "\n").first { $0.hasPrefix("closewaitd_process_close_wait_sockets{") }
        #expect(
            line
                == "closewaitd_process_close_wait_sockets{pid=\"7\",comm=\"a\\\"b\\\\\\\\c\\\\nd\\\\x1b\",unit=\"orders.service\",container_runtime=\"\",container_id=\"\",container=\"\",pod=\"\",namespace=\"\"} 5"
        )
    }

    @Test func perProcessSeriesAreCappedAndTheRestCounted() {
        let statuses = (1...10).map { Self.status(Int32($0), $0) }
        let text = Metrics.render(
            statuses: statuses, firing: [], total: 55, health: Metrics.Health(), version: "0.1.0", maxProcesses: 3)
        let kept = text.split(separator: "\n").filter { $0.hasPrefix("closewaitd_process_close_wait_sockets{") }
        #expect(kept.count == 3)
        #expect(kept.contains { $0.hasSuffix(" 10") } && kept.contains { $0.hasSuffix(" 8") })
        #expect(text.contains("closewaitd_process_series_dropped 7\n"))
    }

    /// Issue 17, row 9: 2,000 alerting processes with max_processes = 50 give 50 series per
    /// per-process family (alerts and peers included), and the rest are counted.
    @Test func everyPerProcessFamilyObeysTheCap() {
        let statuses = (1...2000).map { Self.status(Int32($0), 100) }
        let firing =
            statuses.map { (Optional($0.details.identity), AlertReason.count, AlertLevel.warning) }
            + [(nil, AlertReason.total, AlertLevel.critical)]
        let text = Metrics.render(
            statuses: statuses, firing: firing, total: 150, health: Metrics.Health(), version: "0.1.0", maxProcesses: 50
        )
        let lines = text.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("closewaitd_alert_firing{pid=") }.count == 50)
        #expect(lines.filter { $0.hasPrefix("closewaitd_alert_firing{reason=\"total\"") }.count == 1)
        #expect(
            lines.filter { $0.hasPrefix("closewaitd_process_peer_close_wait_sockets{") }.count <= 50
                * Metrics.peersPerProcess)
        #expect(text.contains("closewaitd_alerting_processes 2000\n"))
        #expect(text.contains("closewaitd_process_series_dropped 1950\n"))
    }
}
