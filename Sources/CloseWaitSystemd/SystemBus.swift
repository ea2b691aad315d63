@preconcurrency import CSystemd
import CloseWaitCore
@preconcurrency import Glibc

/// SystemBus is one connection to the system bus (sd-bus) and the few systemd calls
/// `restart_unit` makes: which unit holds a pid, a unit's properties, RestartUnit, whether a
/// job is still queued. One connection per action, on the action's own thread (an sd_bus is
/// not shared between threads); every call waits at most `callTimeout`.
public final class SystemBus {
    /// A D-Bus error (its name and message) or a local errno.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var name: String
        public var message: String

        public var description: String { name + ": " + message }

        /// polkit said no (no rule lets closewaitd's user restart the unit).
        public var isAccessDenied: Bool {
            name == "org.freedesktop.DBus.Error.AccessDenied"
                || name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
        }
    }

    static let destination = "org.freedesktop.systemd1"
    let bus: OpaquePointer

    public init(callTimeout: Double = 10) throws(Failure) {
        var bus: OpaquePointer?
        let r = sd_bus_open_system(&bus)
        guard r >= 0, let bus else { throw Self.errno(-r, "sd_bus_open_system") }
        self.bus = bus
        _ = sd_bus_set_method_call_timeout(bus, UInt64(max(0.1, callTimeout) * 1e6))
    }

    // Every call here waits for its reply: nothing is left to flush (a flush could wait on a
    // stuck bus with no deadline).
    deinit { sd_bus_close_unref(bus) }

    /// The object path and `Id` of the unit holding `pid`; nil when it is in none (systemd's
    /// `NoUnitForPID`).
    public func unit(pid: Int32) throws(Failure) -> (path: String, id: String)? {
        let path: String
        do {
            path = try self.path { out, error in cw_bus_unit_by_pid(bus, UInt32(bitPattern: pid), out, error) }
        } catch  where error.name == "org.freedesktop.systemd1.NoUnitForPID" {
            return nil
        }
        return (path, try string(path, "org.freedesktop.systemd1.Unit", "Id"))
    }

    /// RestartUnit(name, "replace"): the restart job's object path.
    public func restart(_ unit: String) throws(Failure) -> String {
        try path { out, error in cw_bus_restart_unit(bus, unit, "replace", out, error) }
    }

    public func string(_ path: String, _ interface: String, _ member: String) throws(Failure) -> String {
        var error = sd_bus_error()
        var out: UnsafeMutablePointer<CChar>?
        let r = sd_bus_get_property_string(bus, Self.destination, path, interface, member, &error, &out)
        defer { sd_bus_error_free(&error); free(out) }
        guard r >= 0, let out else { throw Self.failure(r, error, member) }
        return String(cString: out)
    }

    public func uint32(_ path: String, _ interface: String, _ member: String) throws(Failure) -> UInt32 {
        var error = sd_bus_error()
        var value: UInt32 = 0
        let r = sd_bus_get_property_trivial(
            bus, Self.destination, path, interface, member, &error, CChar(UInt8(ascii: "u")), &value)
        defer { sd_bus_error_free(&error) }
        guard r >= 0 else { throw Self.failure(r, error, member) }
        return value
    }

    /// Whether the job at `path` is still queued or running (its object goes when it ends).
    public func jobExists(_ path: String) throws(Failure) -> Bool {
        do {
            _ = try string(path, "org.freedesktop.systemd1.Job", "State")
            return true
        } catch {
            if error.name == "org.freedesktop.DBus.Error.UnknownObject"
                || error.name == "org.freedesktop.systemd1.NoSuchJob"
                || error.name == "org.freedesktop.DBus.Error.UnknownMethod"
            {
                return false
            }
            throw error
        }
    }

    func path(
        _ call: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, UnsafeMutablePointer<sd_bus_error>) -> Int32
    ) throws(Failure) -> String {
        var error = sd_bus_error()
        var out: UnsafeMutablePointer<CChar>?
        let r = call(&out, &error)
        defer { sd_bus_error_free(&error); free(out) }
        guard r >= 0, let out else { throw Self.failure(r, error, "call") }
        return String(cString: out)
    }

    static func failure(_ r: Int32, _ error: sd_bus_error, _ what: String) -> Failure {
        if let name = error.name {
            return Failure(
                name: Escape.line(String(cString: name)),
                message: error.message.map { Escape.line(String(cString: $0)) } ?? "")
        }
        return Self.errno(-r, what)
    }

    static func errno(_ code: Int32, _ what: String) -> Failure {
        Failure(name: "errno", message: what + ": " + String(cString: strerror(code)))
    }
}
