import Foundation
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// NotifySocket is a datagram socket standing in for systemd's NOTIFY_SOCKET: it receives
/// what the daemon sends through sd_notify. Like systemd, it reads continuously (a thread):
/// sd_notify blocks when the socket's queue is full (net.unix.max_dgram_qlen).
final class NotifySocket: @unchecked Sendable {
    let path: String
    let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var reader: Thread?

    var messages: [String] { lock.withLock { received } }

    init() throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("cw-notify-\(UUID().uuidString.prefix(8))")
            .path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { throw TimedOut(description: "bind \(path): errno \(errno)") }
        let thread = Thread { [unowned self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !Thread.current.isCancelled {
                var entry = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, 100) <= 0 { continue }
                let n = recv(self.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                guard n > 0 else { continue }
                let message = String(decoding: buffer[0..<n], as: UTF8.self)
                self.lock.withLock { self.received.append(message) }
            }
        }
        reader = thread
        thread.start()
    }

    /// Waits until a message satisfies `match`, and returns it.
    @discardableResult
    func await(_ what: String, timeout: Double = 60, after index: Int = 0, _ match: (String) -> Bool) throws -> String {
        var found: String?
        try waitFor(what, timeout: timeout) {
            found = messages.dropFirst(index).first(where: match)
            return found != nil
        }
        return found!
    }

    func close() {
        guard let reader else { return }
        self.reader = nil
        reader.cancel()
        while !reader.isFinished { usleep(10_000) }
        Glibc.close(fd)
        unlink(path)
    }
}

/// DaemonProcess runs `closewaitd run` with stderr to a file, under a NotifySocket.
final class DaemonProcess {
    let process = Process()
    let stderrPath: String
    let configPath: String
    let statePath: String
    let notify: NotifySocket

    /// - Parameter launcher: a command that runs the daemon (e.g. setpriv to another user).
    init(config: String, extraArguments: [String] = [], environment: [String: String] = [:], launcher: [String] = [])
        throws
    {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-daemon-\(UUID().uuidString.prefix(8))"
        ).path
        configPath = base + ".toml"
        stderrPath = base + ".log"
        statePath = base + "-state/state.json"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        notify = try NotifySocket()
        let arguments = ["run", "--config", configPath, "--log", "stderr", "--state-file", statePath] + extraArguments
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [Build.path("closewaitd")] + arguments
            chmod(notify.path, 0o777)  // another user must be able to send to it
        } else {
            process.executableURL = URL(fileURLWithPath: Build.path("closewaitd"))
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notify.path
        env.removeValue(forKey: "WATCHDOG_USEC")
        env.removeValue(forKey: "WATCHDOG_PID")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for a stderr line satisfying `match` and returns it.
    @discardableResult
    func awaitLine(_ what: String, timeout: Double = 60, _ match: (Substring) -> Bool) throws -> String {
        var found: Substring?
        do {
            try waitFor(what, timeout: timeout) {
                found = log.split(separator: "\n").first(where: match)
                return found != nil
            }
        } catch {
            throw TimedOut(description: "\(error); daemon stderr:\n\(log)")
        }
        return String(found!)
    }

    func writeConfig(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for exit and returns the status.
    func awaitExit(timeout: Double = 10) throws -> Int32 {
        try waitFor("daemon exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }

    /// Ends the daemon by pid.
    func stop() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        notify.close()
        try? FileManager.default.removeItem(atPath: configPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
        try? FileManager.default.removeItem(atPath: (statePath as NSString).deletingLastPathComponent)
    }

    deinit { stop() }
}

/// A config with fast ticks for tests; `thresholds` lines go into [thresholds].
func testConfig(interval: String = "200ms", hold: String = "1", thresholds: String, extra: String = "") -> String {
    """
    [daemon]
    interval = "\(interval)"
    window = "10s"

    [alerts]
    hold = \(hold)
    reminder = "0"
    cooldown = "0"

    [thresholds]
    growth_warning = 0
    growth_critical = 0
    age_warning = 0
    age_critical = 0
    exhaustion_warning = 0
    exhaustion_critical = 0
    total_warning = 0
    total_critical = 0
    \(thresholds)
    \(extra)
    """
}
