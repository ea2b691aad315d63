@preconcurrency import Glibc

/// Loopback TCP helpers for the workload. Every address here is 127.0.0.1, ::1 or
/// ::ffff:127.0.0.1: the workload never sends a packet off the machine.
enum Loopback {
    enum Kind: String { case v4, v6, mapped }

    static func fail(_ what: String) -> Never {
        fputs("closewaitd-workload: \(what): \(String(cString: strerror(errno)))\n", stderr)
        exit(2)
    }

    /// A listening socket on 127.0.0.1 or [::1], port chosen by the kernel.
    static func listener(v6: Bool, backlog: Int32 = 4096) -> (fd: Int32, port: UInt16) {
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { fail("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            if withSockaddr(&address, { bind(fd, $0, $1) }) != 0 { fail("bind [::1]") }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            if withSockaddr(&address, { bind(fd, $0, $1) }) != 0 { fail("bind 127.0.0.1") }
        }
        if listen(fd, backlog) != 0 { fail("listen") }
        return (fd, localPort(fd))
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // sin_port and sin6_port sit at the same offset.
        return UInt16(bigEndian: storage.sin6_port)
    }

    /// A connected client socket (blocking connect) to the loopback listener on `port`.
    static func connect(kind: Kind, port: UInt16) -> Int32 {
        let v6 = kind != .v4
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if fd < 0 { fail("socket") }
        var result: Int32
        repeat {
            switch kind {
            case .v4:
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
                result = withSockaddr(&address) { Glibc.connect(fd, $0, $1) }
            case .v6, .mapped:
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = port.bigEndian
                if kind == .v6 {
                    address.sin6_addr = in6addr_loopback
                } else {
                    // ::ffff:127.0.0.1 reaches the IPv4 listener through a dual-stack socket.
                    withUnsafeMutableBytes(of: &address.sin6_addr) { bytes in
                        bytes[10] = 0xff; bytes[11] = 0xff; bytes[12] = 127; bytes[15] = 1
                    }
                }
                result = withSockaddr(&address) { Glibc.connect(fd, $0, $1) }
            }
        } while result != 0 && errno == EINTR
        if result != 0 { fail("connect to loopback port \(port)") }
        return fd
    }

    /// Waits until the peer's FIN arrived (POLLRDHUP, whether or not it sent bytes first,
    /// which stay unread): the socket is now in CLOSE_WAIT.
    static func awaitPeerClose(_ fd: Int32, timeoutMs: Int32 = 60_000) -> Bool {
        let rdhup: Int16 = 0x2000  // POLLRDHUP (a GNU extension Glibc does not export)
        let deadline = monotonicSeconds() + Double(timeoutMs) / 1000
        while monotonicSeconds() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN) | rdhup, revents: 0)
            guard poll(&entry, 1, 1000) >= 0 else { return false }
            if entry.revents & (rdhup | Int16(POLLHUP)) != 0 { return true }
            if entry.revents & Int16(POLLIN) != 0 {
                var byte: UInt8 = 0
                if recv(fd, &byte, 1, Int32(MSG_PEEK)) == 0 { return true }
                usleep(1000)  // data but no FIN yet: it is coming
            }
        }
        return false
    }

    static func inode(_ fd: Int32) -> UInt64 {
        var info = stat()
        fstat(fd, &info)
        return UInt64(info.st_ino)
    }

    static func withSockaddr<T>(_ address: inout T, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<T>.size)) }
        }
    }
}
