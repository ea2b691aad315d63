import CClock
@preconcurrency import CSystemd
import CloseWaitCore
@preconcurrency import Glibc

/// Notifier reports the service's state to systemd over the sd_notify protocol (sd_notify(3)):
/// datagrams to the AF_UNIX socket named by NOTIFY_SOCKET. Every call is a no-op when
/// NOTIFY_SOCKET is unset (not started by systemd).
///
/// It sends itself instead of calling libsystemd's sd_notify, which blocks while the socket's
/// queue is full (a manager that stopped reading would wedge the loop, SIGTERM included):
/// here the socket is non-blocking, STATUS and WATCHDOG messages that do not fit are dropped
/// and counted, and READY/STOPPING wait at most `importantWait` seconds.
public final class Notifier {
    /// The watchdog interval systemd expects pings within (sd_watchdog_enabled), if enabled.
    public let watchdogInterval: Double?
    /// Messages the manager's socket had no room for.
    public private(set) var dropped = 0
    /// STATUS= is cut to this many bytes: a sentence, not a document.
    public static let statusLimit = 256
    public var importantWait = 1.0

    private let address: [UInt8]?
    private var fd: Int32 = -1

    public init(environment socket: String? = getenv("NOTIFY_SOCKET").map { String(cString: $0) }) {
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 ? Double(usec) / 1e6 : nil
        address = socket.flatMap(Self.socketAddress)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether a notification socket was given to us.
    public var isSupervised: Bool { address != nil }

    /// The sun_path bytes for NOTIFY_SOCKET: a path, or `@name` for the abstract namespace.
    static func socketAddress(_ value: String) -> [UInt8]? {
        var bytes = Array(value.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@"), bytes.count >= 2,
            bytes.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        else { return nil }
        if first == UInt8(ascii: "@") { bytes[0] = 0 }
        return bytes
    }

    /// Sends one message; `wait` is how long to wait for room in the manager's queue (0: drop
    /// at once). Returns whether it was sent.
    @discardableResult
    public func notify(_ assignments: [String], wait: Double = 0) -> Bool {
        guard let address else { return false }
        if fd < 0 {
            fd = socket(
                AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { dropped += 1; return false }
        }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &target.sun_path) { raw in
            for (i, byte) in address.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count + (address[0] == 0 ? 0 : 1))
        let message = Array(assignments.joined(separator: "\n").utf8)
        let deadline = monotonicSeconds() + wait
        while true {
            let sent = message.withUnsafeBytes { raw in
                withUnsafePointer(to: &target) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            if sent >= 0 { return true }
            let code = errno
            if code == EINTR { continue }
            let remaining = deadline - monotonicSeconds()
            guard code == EAGAIN || code == EWOULDBLOCK, remaining > 0 else { break }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, Int32(max(1, min(remaining, 0.1) * 1000)))
        }
        dropped += 1
        return false
    }

    public func ready(status: String) { notify(["READY=1", "STATUS=" + Self.status(status)], wait: importantWait) }
    public func status(_ text: String) { notify(["STATUS=" + Self.status(text)]) }
    public func watchdog() { notify(["WATCHDOG=1"]) }
    public func stopping() { notify(["STOPPING=1", "STATUS=Stopping."], wait: importantWait) }
    /// READY=1 after a reload, with a STATUS.
    public func reloaded(status: String) { notify(["READY=1", "STATUS=" + Self.status(status)], wait: importantWait) }

    /// One line, no control characters (the manager splits a message on `\n` and `\r`, so a
    /// comm holding them could forge an assignment), at most `statusLimit` bytes.
    public static func status(_ text: String) -> String { Escape.line(text, limit: statusLimit) }

    /// RELOADING=1 with the CLOCK_MONOTONIC time, as systemd's notify-reload protocol wants.
    public func reloading() {
        let usec = UInt64(cw_monotonic_seconds() * 1e6)
        notify(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=Reloading configuration."], wait: importantWait)
    }

    private func monotonicSeconds() -> Double { cw_monotonic_seconds() }
}
