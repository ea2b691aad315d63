import CSystemd
@preconcurrency import Glibc

/// Notifier reports the service's state to systemd with sd_notify(3). Every call is a no-op
/// when NOTIFY_SOCKET is unset (not started by systemd).
public struct Notifier: Sendable {
    /// The watchdog interval systemd expects pings within (sd_watchdog_enabled), if enabled.
    public let watchdogInterval: Double?

    public init() {
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 ? Double(usec) / 1e6 : nil
    }

    /// Whether a notification socket was given to us.
    public var isSupervised: Bool { getenv("NOTIFY_SOCKET") != nil }

    @discardableResult
    public func notify(_ assignments: [String]) -> Bool {
        sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    public func ready(status: String) { notify(["READY=1", "STATUS=" + status.replacingNewlines]) }
    public func status(_ text: String) { notify(["STATUS=" + text.replacingNewlines]) }
    public func watchdog() { notify(["WATCHDOG=1"]) }
    public func stopping() { notify(["STOPPING=1", "STATUS=Stopping."]) }

    /// RELOADING=1 with the CLOCK_MONOTONIC time, as systemd's notify-reload protocol wants.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        notify(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=Reloading configuration."])
    }
}
