import CloseWaitCore
import Foundation
import Testing
import WorkloadSupport
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// `closewaitd run` started the way systemd starts a socket-activated service: a listening
/// socket on 127.0.0.1 (an ephemeral port) as fd 3, LISTEN_FDS=1, LISTEN_PID = its pid.
final class SocketActivatedDaemon {
    let pid: pid_t
    let port: UInt16
    let logPath: String
    let configPath: String

    init(config: String) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-activated-\(UUID().uuidString.prefix(8))"
        ).path
        configPath = base + ".toml"
        logPath = base + ".log"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let (fd, port) = try loopbackListener()
        defer { Glibc.close(fd) }
        self.port = port
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 3)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // sh -c 'exec': the daemon keeps the shell's pid, which LISTEN_PID must name.
        let script = "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""
        let args = [
            "/bin/sh", "-c", script, Build.path("closewaitd"), "run", "--config", configPath, "--log", "stderr",
            "--state-file", "",
        ]
        let env = ProcessInfo.processInfo.environment.filter {
            !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"].contains($0.key)
        }
        .map { "\($0.key)=\($0.value)" }
        var argv = args.map { strdup($0) } + [nil]
        var envp = env.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var child = pid_t()
        let rc = posix_spawn(&child, "/bin/sh", &actions, nil, &argv, &envp)
        guard rc == 0 else { throw TimedOut(description: "posix_spawn: \(rc)") }
        pid = child
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Ends the daemon by pid.
    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(atPath: configPath)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

func residentKiB(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return nil }
    return Int(line.split(separator: " ")[1])
}

/// GET /metrics served by `closewaitd run` from a socket systemd's tools pass in (socket
/// activation) or from `[metrics] listen`, against real leaking processes and hostile clients.
@Suite(.serialized, .enabled(if: Live.available, Live.reason)) struct MetricsEndpointLiveTests {
    @Test func servesTheLeakerFromAnInheritedSocket() throws {
        let leak = try Workload(["--processes", "1", "--v4", "6"])
        defer { leak.stop() }
        let holder = leak.holders[0]
        // What systemd does for a socket unit: bind and listen, pass the socket as fd 3 with
        // LISTEN_FDS=1 and LISTEN_PID. (Not systemd-socket-activate under Foundation's Process:
        // it closes every other fd before exec, which Foundation takes for the child's exit.)
        let daemon = try SocketActivatedDaemon(
            config: testConfig(thresholds: "count_warning = 5\ncount_critical = 1000"))
        defer { daemon.stop() }
        let port = daemon.port
        var page = ""
        try waitFor("a scrape naming the leaker", timeout: 60) {
            page = (try? LoopbackClient.get(port: port)) ?? ""
            return page.contains("closewaitd_process_close_wait_sockets{pid=\"\(holder)\",comm=\"closewaitd-work\"")
        }
        #expect(
            daemon.log.contains("serving Prometheus metrics at http://127.0.0.1:\(port)/metrics (socket from systemd)"),
            "\(daemon.log)")
        #expect(page.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        let body = String(page[page.range(of: "\r\n\r\n")!.upperBound...])
        #expect(
            body.contains("\",container_runtime=\"\",container_id=\"\",container=\"\",pod=\"\",namespace=\"\"} 6\n"))
        #expect(body.contains("closewaitd_alert_firing{pid=\"\(holder)\""))
        #expect(body.contains("closewaitd_http_connections_total{outcome=\"answered\"}"))
        // The liveness probe's endpoint: fresh ticks.
        let health = try LoopbackClient.get(port: port, "/healthz")
        #expect(health.hasPrefix("HTTP/1.1 200 OK\r\n") && health.hasSuffix("\r\n\r\nok\n"), "\(health)")
        // The exposition is valid for Prometheus's own checker (Debian's prometheus package).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cw-scrape-\(port).prom").path
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let check = try run("/bin/sh", ["-c", "promtool check metrics < \(file)"])
        #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
    }

    @Test func hostileClientsNeitherStallTicksNorGrowMemory() throws {
        let port = freeLoopbackPort()
        let daemon = try DaemonProcess(
            config: testConfig(
                interval: "200ms", thresholds: "count_warning = 5\ncount_critical = 1000",
                extra: "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n"))
        defer { daemon.stop() }
        try daemon.notify.await("READY=1") { $0.contains("READY=1") }
        #expect(try LoopbackClient.get(port: port, "/").contains("<a href=\"/metrics\">"))
        let rssBefore = try #require(residentKiB(daemon.pid))
        // The tick rate without abuse, on this machine now (a loaded host ticks slower).
        let baselineStart = Date(), baselineCount = daemon.notify.messages.filter { $0.contains("STATUS=") }.count
        try waitFor("two seconds of ticks", timeout: 10) { Date().timeIntervalSince(baselineStart) >= 2 }
        let baselineRate =
            Double(daemon.notify.messages.filter { $0.contains("STATUS=") }.count - baselineCount)
            / Date().timeIntervalSince(baselineStart)

        // A client that connects and sends nothing, and one that sends 1 MB of headers.
        let silent = try LoopbackClient(port: port)
        defer { silent.close() }
        let flood = try LoopbackClient(port: port)
        defer { flood.close() }
        let statusesBefore = daemon.notify.messages.filter { $0.contains("STATUS=") }.count
        let started = Date()
        flood.send(Array("GET /metrics HTTP/1.1\r\n".utf8) + Array(repeating: UInt8(ascii: "X"), count: 1 << 20))
        let floodAnswer = String(decoding: flood.readToEnd(), as: UTF8.self)
        #expect(floodAnswer.isEmpty || floodAnswer.hasPrefix("HTTP/1.1 431 "), "\(floodAnswer.prefix(80))")

        // 50 concurrent scrapes: every one is answered in full.
        let clients = try (0..<50).map { _ in try LoopbackClient(port: port) }
        for c in clients { c.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        let answers = clients.map { c in
            defer { c.close() }; return String(decoding: c.readToEnd(), as: UTF8.self)
        }
        let good = answers.filter { $0.hasPrefix("HTTP/1.1 200 OK") && $0.contains("closewaitd_close_wait_sockets ") }
        #expect(good.count == 50, "\(answers.first { !good.contains($0) }?.prefix(300) ?? "")")

        // The silent client is cut off by the server (408) within its head timeout.
        let silentAnswer = String(decoding: silent.readToEnd(), as: UTF8.self)
        #expect(silentAnswer.isEmpty || silentAnswer.hasPrefix("HTTP/1.1 408 "))
        let waited = Date().timeIntervalSince(started)
        #expect(waited < 15, "the silent client was held \(waited) s")

        // Meanwhile the 200 ms tick kept going (a STATUS each tick), and memory stayed put.
        let statuses = daemon.notify.messages.filter { $0.contains("STATUS=") }.count - statusesBefore
        #expect(
            Double(statuses) / waited >= baselineRate * 0.5,
            "\(statuses) STATUS in \(waited) s; \(baselineRate)/s before")
        let rssAfter = try #require(residentKiB(daemon.pid))
        #expect(rssAfter - rssBefore < 8 * 1024, "RSS \(rssBefore) → \(rssAfter) KiB")
        let counters = try LoopbackClient.get(port: port)
        #expect(
            counters.contains("closewaitd_http_connections_total{outcome=\"timed-out\"} 1\n"), "\(counters.suffix(400))"
        )
        #expect(counters.contains("closewaitd_http_connections_total{outcome=\"rejected\"} 1\n"))
    }

    @Test func aListenAddressInUseRefusesToStart() throws {
        let port = freeLoopbackPort()
        let (holder, _) = try loopbackListener(port: port)
        defer { close(holder) }
        let daemon = try DaemonProcess(
            config: testConfig(thresholds: "", extra: "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n"))
        defer { daemon.stop() }
        #expect(try daemon.awaitExit() == 69)
        #expect(
            daemon.log.contains(
                "cannot serve metrics on metrics.listen 127.0.0.1:\(port): bind 127.0.0.1:\(port): Address already in use"
            ))
    }
}
