import CloseWaitCore
@testable import CloseWaitDaemon
import CloseWaitLinux
import Foundation
import Testing

/// A reload (SIGHUP) goes through the same `configure` as the start: every setting the config
/// file holds reaches the part of the daemon that uses it. A setting added to `Settings`
/// without a line here fails `everySettingIsCovered`.
@Suite struct ReloadTests {
    static let before = """
        [daemon]
        interval = "5s"
        """

    static let after = """
        [daemon]
        interval = "7s"
        source = "proc"
        scanner = "poll"
        window = "10min"
        full_scan_interval = "2min"
        namespaces = "own"
        max_processes = 300
        [alerts]
        hold = 4
        reminder = "1h"
        cooldown = "2min"
        clear_ratio = 0.5
        [thresholds]
        count_warning = 50
        count_critical = 400
        growth_warning = 2
        growth_critical = 20
        age_warning = "20min"
        age_critical = "3h"
        exhaustion_warning = "2h"
        exhaustion_critical = "10min"
        min_count = 3
        total_warning = 2000
        total_critical = 6000
        unowned_warning = 50
        unowned_critical = 500
        [metrics]
        max_processes = 100
        textfile = "/nonexistent/closewaitd.prom"
        listen = "127.0.0.1:19838"
        [containers]
        docker_roots = ["/host/var/lib/docker"]
        [actions]
        max_per_hour = 3
        [[action]]
        name = "page"
        exec = ["/bin/true"]
        [[rule]]
        name = "orders"
        match_unit = "orders.service"
        count_warning = 20
        """

    /// Where each setting takes effect after `configure`, as a check of the daemon.
    @MainActor static let appliedBy: [String: (Daemon, Settings) -> Bool] = [
        "interval": { d, s in
            d.tickInterval == s.interval && d.pipeline.tickInterval == s.interval
                && d.pipeline.collector.sampler.foreignBudget == TickPipeline.namespaceBudget(interval: s.interval)
        },
        "source": { d, s in d.pipeline.collector.sampler.choice == s.source },
        "scanner": { d, s in d.pipeline.collector.scanner.choice == s.scanner },
        "namespaces": { d, s in (d.pipeline.collector.sampler.namespaces != nil) == (s.namespaces == .all) },
        "window": { d, s in d.pipeline.tracker.window == s.window },
        "fullScanInterval": { d, s in d.pipeline.collector.owners.fullScanInterval == s.fullScanInterval },
        "maxProcesses": { d, s in d.pipeline.collector.maxProcesses == s.maxProcesses },
        "hold": { d, s in d.pipeline.policy.settings.hold == s.hold },
        "reminder": { d, s in d.pipeline.policy.settings.reminder == s.reminder },
        "cooldown": { d, s in d.pipeline.policy.settings.cooldown == s.cooldown },
        "clearRatio": { d, s in d.pipeline.policy.settings.clearRatio == s.clearRatio },
        "thresholds": { d, s in d.pipeline.policy.settings.thresholds == s.thresholds },
        "totalWarning": { d, s in d.pipeline.policy.settings.totalWarning == s.totalWarning },
        "totalCritical": { d, s in d.pipeline.policy.settings.totalCritical == s.totalCritical },
        // The policy alerts on it; the pipeline's notes say it.
        "unownedWarning": { d, s in
            d.pipeline.policy.settings.unownedWarning == s.unownedWarning
                && d.pipeline.settings.unownedWarning == s.unownedWarning
        },
        "unownedCritical": { d, s in d.pipeline.policy.settings.unownedCritical == s.unownedCritical },
        "rules": { d, s in d.pipeline.policy.settings.rules == s.rules },
        "metricsTextfile": { d, s in d.outputs.metricsTextfile == s.metricsTextfile },
        "metricsMaxProcesses": { d, s in d.outputs.metricsMaxProcesses == s.metricsMaxProcesses },
        "containers": { d, s in d.pipeline.collector.containerNamer.roots == s.containers },
        "actions": { d, s in d.outputs.actions.settings == s.actions },
    ]
    /// Bound once at start (a listening socket); a reload says so in the journal.
    static let restartOnly: Set<String> = ["metricsListen"]

    static func labels(_ settings: Settings) -> [String] { Mirror(reflecting: settings).children.compactMap(\.label) }

    @MainActor @Test func everySettingIsCovered() {
        #expect(Set(Self.labels(Settings())) == Set(Self.appliedBy.keys).union(Self.restartOnly))
    }

    @MainActor @Test func aReloadAppliesEverySetting() throws {
        let path = NSTemporaryDirectory() + "closewaitd-reload-\(getpid()).toml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.before.write(toFile: path, atomically: true, encoding: .utf8)
        let old = try ConfigLoader.load(path: path).get()
        let daemon = Daemon(
            options: DaemonOptions(configPath: path, logTarget: .stderr, procRoot: "/proc", stateFile: nil),
            settings: old)
        try Self.after.write(toFile: path, atomically: true, encoding: .utf8)
        let new = try ConfigLoader.load(path: path).get()
        // The file changes every setting, so each check below could fail.
        let oldValues = Mirror(reflecting: old).children.map { "\($0.value)" }
        let newValues = Mirror(reflecting: new).children.map { "\($0.value)" }
        for (label, (a, b)) in zip(Self.labels(new), zip(oldValues, newValues)) {
            #expect(a != b, "\(label) unchanged by the test file")
        }
        for (label, applied) in Self.appliedBy {
            #expect(!applied(daemon, new), "\(label) already applied before the reload")
        }

        daemon.reload()
        #expect(daemon.settings == new)
        #expect(daemon.outputs.health.reloadsSucceeded == 1)
        for (label, applied) in Self.appliedBy { #expect(applied(daemon, new), "\(label) not applied by a reload") }
    }
}
