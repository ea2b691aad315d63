@_exported import WorkloadSupport
import Glibc
import Testing

/// What the live suites need: root (other users' fds, namespaces, cgroups) and the system
/// tools they drive. Without them each live suite is skipped with this reason rather than
/// failing: `make unit` is the tier for a machine without either.
enum Live {
    static let tools = ["/usr/bin/ss", "/usr/sbin/ip", "/usr/bin/unshare", "/usr/bin/setpriv", "/usr/bin/python3"]
    static let missing: [String] = tools.filter { access($0, X_OK) != 0 }
    static let available = getuid() == 0 && missing.isEmpty
    static let reason: Comment =
        getuid() != 0
        ? "live tests need root (run make check as root, or make unit for the pure tier)"
        : "live tests need \(missing.joined(separator: ", ")) (make test-deps installs them)"
}
