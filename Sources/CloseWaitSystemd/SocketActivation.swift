@preconcurrency import CSystemd
import Glibc

/// SocketActivation takes the listening sockets systemd passed in (`LISTEN_FDS`, from a
/// socket unit such as `closewaitd-metrics.socket`), the way exporter-toolkit's
/// `--web.systemd-socket` does. The variables are unset so no child inherits them.
public enum SocketActivation {
    public enum Outcome: Equatable, Sendable {
        case none
        case listening(Int32)
        /// Passed descriptors that are not one listening TCP stream socket; closed.
        case unusable(String)
    }

    public static func take() -> Outcome {
        let count = sd_listen_fds(1)
        if count <= 0 { return .none }
        let first = SD_LISTEN_FDS_START
        var chosen: Int32?
        for fd in first..<(first + count) {
            let inet = sd_is_socket_inet(fd, 0, Int32(SOCK_STREAM.rawValue), 1, 0) > 0
            if chosen == nil && inet { chosen = fd } else { close(fd) }
        }
        guard let chosen else {
            return .unusable("\(count) descriptor(s) passed by systemd, none a listening TCP socket")
        }
        return .listening(chosen)
    }
}
