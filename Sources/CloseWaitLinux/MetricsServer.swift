import CLinuxShim
import CloseWaitCore
@preconcurrency import Glibc
import Synchronization

/// MetricsServer answers `GET /metrics` on one listening TCP socket — inherited from systemd
/// (socket activation) or bound from `[metrics] listen` — on its own thread, so nothing a
/// client does reaches the main queue. A poll(2) loop with non-blocking sockets: every
/// request head is bounded (`HTTPExchange.maxHeadBytes`), a client that has not sent a whole
/// head within `headTimeout` is dropped, a response not taken within `writeTimeout` too, and
/// at most `maxClients` connections are held (when full, one silent for `idleEviction` is
/// dropped for a newcomer; otherwise newcomers wait in the kernel's backlog). The page comes
/// from `page`, which renders the last tick's state and never reads /proc. Each response
/// closes its connection.
public final class MetricsServer: Sendable {
    public struct Limits: Sendable {
        public var maxClients = 16
        public var headTimeout = 5.0
        public var writeTimeout = 30.0
        /// When full, a connection silent this long gives its place to a newcomer.
        public var idleEviction = 1.0
        public init() {}
    }

    public typealias Counters = HTTPExchange.Counters

    public let listenFD: Int32
    let limits: Limits
    let page: @Sendable () -> [UInt8]
    let state = Mutex<(counters: Counters, stopping: Bool)>((Counters(), false))

    /// Serves on `listenFD` (made non-blocking here), a bound, listening SOCK_STREAM socket.
    public init(listenFD: Int32, limits: Limits = Limits(), page: @escaping @Sendable () -> [UInt8]) {
        self.listenFD = listenFD
        self.limits = limits
        self.page = page
        let flags = fcntl(listenFD, F_GETFL)
        _ = fcntl(listenFD, F_SETFL, flags | O_NONBLOCK)
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Creates, binds and listens on `address` (SO_REUSEADDR; IPV6_V6ONLY for an IPv6 one).
    public static func bind(_ address: ListenAddress) throws(Errno) -> Int32 {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw Errno(errno, call: "socket", path: address.description) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.isIPv6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        // sockaddr_in and sockaddr_in6 share their first fields (family, port); only the
        // address's offset and the length differ.
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(family)
        let (offset, length) = address.isIPv6
            ? (MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!, MemoryLayout<sockaddr_in6>.size)
            : (MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!, MemoryLayout<sockaddr_in>.size)
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: address.port.bigEndian) { raw.baseAddress!.advanced(by: 2).copyMemory(from: $0.baseAddress!, byteCount: 2) }
            for (i, b) in address.address.enumerated() { raw[offset + i] = b }
        }
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(length)) } }
        if rc != 0 || listen(fd, 64) != 0 {
            let code = errno
            close(fd)
            throw Errno(code, call: rc != 0 ? "bind" : "listen", path: address.description)
        }
        return fd
    }

    /// `ADDRESS:PORT` of a listening socket, for the journal.
    public static func boundDescription(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard rc == 0 else { return "an unknown address" }
        return withUnsafeBytes(of: storage) { raw -> String in
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            switch Int32(storage.ss_family) {
            case AF_INET: return ListenAddress(address: Array(raw[4..<8]), port: port).description
            case AF_INET6: return ListenAddress(address: Array(raw[8..<24]), port: port).description
            default: return "a socket of family \(storage.ss_family)"
            }
        }
    }

    /// Starts the serving thread; false if no thread could be made (the caller says so).
    public func start() -> Bool {
        guard let thread = Threads.start({ self.serve() }) else { return false }
        pthread_detach(thread)
        return true
    }

    /// Asks the thread to finish (within a quarter second) and close every connection.
    public func stop() { state.withLock { $0.stopping = true } }

    struct Client {
        var fd: Int32
        var since: Double
        var head: [UInt8] = []
        var out: [UInt8]? = nil
        var sent = 0
    }

    func count(_ update: (inout Counters) -> Void) { state.withLock { update(&$0.counters) } }

    func serve() {
        var clients = [Client]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        defer { for c in clients { close(c.fd) } }
        while !state.withLock({ $0.stopping }) {
            // Full and nobody to evict: leave the listening socket out of this poll (no spinning).
            let now = monotonicNow()
            let full = clients.count >= limits.maxClients
                && !clients.contains { $0.out == nil && now - $0.since >= limits.idleEviction }
            var fds = [pollfd(fd: listenFD, events: full ? 0 : Int16(POLLIN), revents: 0)]
            for c in clients { fds.append(pollfd(fd: c.fd, events: Int16(c.out == nil ? POLLIN : POLLOUT), revents: 0)) }
            var wait = 0.25
            for c in clients {
                wait = min(wait, max(0, c.since + (c.out == nil ? limits.headTimeout : limits.writeTimeout) - now))
                if full && c.out == nil { wait = min(wait, max(0, c.since + limits.idleEviction - now)) }
            }
            let ready = poll(&fds, nfds_t(fds.count), Int32((wait * 1000).rounded(.up)))
            if ready < 0 && errno != EINTR { return }
            let after = monotonicNow()
            var finished = Set<Int32>()
            for (i, var client) in clients.enumerated() {
                let revents = fds[i + 1].revents
                if client.out == nil, revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let room = HTTPExchange.maxHeadBytes + 1 - client.head.count
                    let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, min(room, $0.count), Int32(MSG_DONTWAIT)) }
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { finished.insert(client.fd); continue }
                    if n > 0 { client.head += chunk[0..<n] }
                    let parsed = HTTPExchange.parse(client.head)
                    if parsed != .incomplete {
                        if case .reject = parsed { count { $0.rejected += 1 } } else { count { $0.responses += 1 } }
                        client.out = HTTPExchange.response(to: parsed, page: page)
                        client.head = []
                        client.since = after
                    }
                } else if client.out != nil, revents & Int16(POLLOUT | POLLHUP | POLLERR) != 0 {
                    if !write(&client) { finished.insert(client.fd); continue }
                }
                // Deadlines hold whatever the client trickles in.
                if client.out == nil, after - client.since >= limits.headTimeout {
                    count { $0.timedOut += 1 }
                    client.out = HTTPExchange.response(to: .incomplete, page: page)
                    client.since = after
                    if !write(&client) { finished.insert(client.fd); continue }
                } else if client.out != nil, after - client.since >= limits.writeTimeout {
                    count { $0.timedOut += 1 }
                    finished.insert(client.fd)
                    continue
                }
                clients[i] = client
            }
            if !finished.isEmpty {
                for c in clients where finished.contains(c.fd) { close(c.fd) }
                clients.removeAll { finished.contains($0.fd) }
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                for _ in 0..<limits.maxClients {
                    if clients.count >= limits.maxClients {
                        // Full: make room only by dropping a connection that has waited at least
                        // `idleEviction` without sending its head (an idle or slow client);
                        // otherwise newcomers wait in the kernel's backlog.
                        guard let victim = clients.indices.filter({ clients[$0].out == nil && after - clients[$0].since >= limits.idleEviction })
                            .min(by: { clients[$0].since < clients[$1].since }) else { break }
                        close(clients[victim].fd)
                        clients.remove(at: victim)
                        count { $0.evicted += 1 }
                    }
                    let fd = cw_accept_nonblocking(listenFD)
                    if fd < 0 { break }
                    clients.append(Client(fd: fd, since: after))
                }
            }
        }
    }

    /// Sends what the socket takes now; true while more remains, false when done or failed
    /// (the caller closes).
    func write(_ client: inout Client) -> Bool {
        guard let out = client.out else { return false }
        while client.sent < out.count {
            let n = out.withUnsafeBytes { raw in
                send(client.fd, raw.baseAddress! + client.sent, out.count - client.sent, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if n < 0 { return errno == EAGAIN || errno == EINTR }
            client.sent += n
        }
        shutdown(client.fd, Int32(SHUT_WR))
        return false
    }
}
