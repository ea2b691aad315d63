import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
import CloseWaitDaemon
import CloseWaitSystemd
import Dispatch
@preconcurrency import Glibc

extension JournalWriter.Target: ExpressibleByArgument {}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Watch every process's CLOSE_WAIT sockets and alert in the journal (runs in the foreground, for systemd).",
        discussion: """
            Every daemon.interval it samples the kernel's CLOSE_WAIT sockets, finds their owning \
            processes, tracks each process's count, growth per minute, oldest socket age and \
            predicted fd exhaustion, and sends an alert to the journal when a threshold from the \
            config is crossed (held for alerts.hold), escalates, is still firing (alerts.reminder) \
            or recovers. Without a journal (a terminal), alerts go to stderr, one line each.

            Signals: SIGHUP reloads the config (a bad config is rejected and the running one kept); \
            SIGTERM or SIGINT stops cleanly with exit status 0.

            Under systemd (Type=notify) it sends READY=1 after the first successful sample, a \
            STATUS= line each tick, WATCHDOG=1 after each successful tick, RELOADING=1 and \
            STOPPING=1.

            Exit status: 0 stopped by a signal; 78 (EX_CONFIG) the config is invalid; 69 \
            (EX_UNAVAILABLE) --log journal without journald, too few file descriptors allowed \
            (RLIMIT_NOFILE) to sample at all, or metrics.listen cannot be bound.

            Metrics: with a listening socket from systemd (closewaitd-metrics.socket) or \
            metrics.listen in the config, it answers GET /metrics in the Prometheus text format \
            from the last tick's state, on its own thread.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The config file (default /etc/closewaitd/closewaitd.toml; if that does not exist, the built-in defaults).",
            valueName: "path"))
    var config: String?

    @Option(
        name: .long,
        help:
            "Where alerts and logs go: auto (the journal if journald listens, else stderr), journal, stderr, stdout, or json (one JSON object per line on stdout, for a container's log shipper)."
    )
    var log: JournalWriter.Target = .auto

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The state file `closewaitd status` reads, rewritten each tick; '' for none.", valueName: "path"))
    var stateFile: String = StateFile.defaultPath

    @Option(name: .long, help: .hidden)
    var procRoot: String = "/proc"

    func run() throws {
        let path = config ?? ConfigLoader.defaultPath
        var settings = Settings()
        if config != nil || access(path, F_OK) == 0 {
            switch ConfigLoader.load(path: path) {
            case let .success(loaded): settings = loaded
            case let .failure(errors):
                printError("closewaitd: refusing to start, the config has \(errors.problems.count) problem(s):")
                printError(errors.description)
                throw ExitCode(78)
            }
        } else {
            printError("closewaitd: no config at \(path); using the built-in defaults")
        }
        if log == .journal && !JournalWriter.journalListening() {
            printError(
                "closewaitd: --log journal, but journald is not listening at \(JournalWriter.journalSocket); alerts would be lost. Use --log auto or stderr."
            )
            throw ExitCode(69)
        }
        if let problem = FdLimit.ensureHeadroom() {
            printError("closewaitd: \(problem)")
            throw ExitCode(69)
        }
        var metricsSocket: (fd: Int32, origin: String)?
        switch SocketActivation.take() {
        case let .listening(fd):
            metricsSocket = (fd, "socket from systemd")
            if let address = settings.metricsListen {
                printError(
                    "closewaitd: metrics.listen \(address) ignored: systemd passed a listening socket (closewaitd-metrics.socket)"
                )
            }
        case let .unusable(why):
            printError("closewaitd: socket activation: \(why); metrics are served only if metrics.listen is set")
        case .none:
            break
        }
        if metricsSocket == nil, let address = settings.metricsListen {
            do {
                metricsSocket = (try MetricsServer.bind(address), "metrics.listen")
            } catch {
                printError(
                    "closewaitd: cannot serve metrics on metrics.listen \(address): \(error)."
                        + (error.code == EAFNOSUPPORT || error.code == EPERM
                            ? " Under the shipped unit (RestrictAddressFamilies=AF_UNIX AF_NETLINK) use closewaitd-metrics.socket instead."
                            : ""))
                throw ExitCode(69)
            }
        }
        let options = DaemonOptions(
            configPath: path, logTarget: log, procRoot: procRoot,
            stateFile: stateFile.isEmpty ? nil : stateFile, metricsSocket: metricsSocket)
        MainActor.assumeIsolated {
            let daemon = Daemon(options: options, settings: settings)
            if let why = daemon.scannerError {
                // daemon.scanner = "ebpf" asked for exactly that: no silent fallback (auto polls).
                printError(
                    "closewaitd: daemon.scanner = \"ebpf\" but the eBPF scanner cannot run: \(why). Use \"auto\" to poll where eBPF is unavailable."
                )
                Glibc.exit(69)
            }
            daemon.start()
            Self.keepAlive = daemon
        }
        dispatchMain()
    }

    @MainActor static var keepAlive: Daemon?
}

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file without running.",
        discussion: """
            Prints every problem as FILE:LINE: key: what is wrong, and exits 78 (EX_CONFIG) if \
            there is any; prints a summary of the effective settings and exits 0 otherwise.
            """
    )

    @Argument(help: ArgumentHelp("The config file.", valueName: "path"))
    var path: String = ConfigLoader.defaultPath

    @Flag(name: .shortAndLong, help: "Print nothing when the config is valid.")
    var quiet = false

    func run() throws {
        switch ConfigLoader.load(path: path) {
        case let .success(s):
            guard !quiet else { return }
            let t = s.thresholds
            print("\(path): OK")
            print(
                "  interval \(TimeSpan.format(s.interval)), window \(TimeSpan.format(s.window)), source \(s.source.rawValue)"
            )
            print(
                "  thresholds: count \(t.countWarning)/\(t.countCritical), growth \(t.growthWarning)/\(t.growthCritical) per min, "
                    + "age \(TimeSpan.format(t.ageWarning))/\(TimeSpan.format(t.ageCritical)), "
                    + "exhaustion \(TimeSpan.format(t.exhaustionWarning))/\(TimeSpan.format(t.exhaustionCritical)), "
                    + "total \(s.totalWarning)/\(s.totalCritical)")
            for rule in s.rules {
                let match = [
                    ("unit", rule.matchUnit), ("comm", rule.matchComm), ("exe", rule.matchExe),
                    ("container", rule.matchContainer), ("pod", rule.matchPod), ("namespace", rule.matchNamespace),
                ]
                .compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: " ")
                print("  rule \(rule.name): \(match)\(rule.ignore ? " (ignored)" : "")")
            }
            for action in s.actions.specs {
                let on = [
                    action.levels.isEmpty ? nil : action.levels.map(\.name).sorted().joined(separator: ","),
                    action.reasons.isEmpty ? nil : action.reasons.map(\.rawValue).sorted().joined(separator: ","),
                    action.rules.isEmpty ? nil : "rule " + action.rules.sorted().joined(separator: ","),
                ].compactMap { $0 }.joined(separator: " ")
                print(
                    "  action \(action.name): \(ActionMessage.what(action)) on \(on.isEmpty ? "any alert" : on), "
                        + "cooldown \(TimeSpan.format(action.cooldown)), timeout \(TimeSpan.format(action.timeout))"
                        + (action.dryRun ? " (dry run)" : ""))
            }
            if !s.actions.specs.isEmpty { print("  actions: at most \(s.actions.maxPerHour) an hour") }
            let units = Set(s.actions.specs.compactMap(\.unit)).sorted()
            if !units.isEmpty {
                // A cheap look, not polkit's verdict: does the rule file name every unit?
                let said: String
                do {
                    let rule = String(decoding: try readRegularFile(PolkitRule.path, limit: 1 << 20), as: UTF8.self)
                    let missing = PolkitRule.missing(units, in: rule)
                    said =
                        missing.isEmpty
                        ? "\(PolkitRule.path) names \(units.count == 1 ? "it" : "them")"
                        : "\(PolkitRule.path) does not name \(missing.joined(separator: ", ")) (write it again: closewaitd polkit-rule > \(PolkitRule.path))"
                } catch  where error.errno?.code == ENOENT {
                    said = "\(PolkitRule.path) is missing (write it: closewaitd polkit-rule > \(PolkitRule.path))"
                } catch {
                    said = "\(PolkitRule.path) could not be read (\(error)): run check-config as root to see it"
                }
                print("  restart_unit: \(units.joined(separator: ", ")); " + said)
            }
        case let .failure(errors):
            printError(errors.description)
            throw ExitCode(78)
        }
    }
}
