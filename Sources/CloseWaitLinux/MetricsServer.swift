import CLinuxShim
import CloseWaitCore
@preconcurrency import Glibc
import Synchronization

/// MetricsServer answers `GET /metrics` on one listening TCP socket — inherited from systemd
/// (socket activation) or bound from `[metrics] listen` — on its own thread, so nothing a
/// client does reaches the main queue. A poll(2) loop with non-blocking sockets, built so a
/// local user's connections cannot keep a well-behaved scraper out:
/// - the kernel's accept queue is drained every round (a full queue drops the scraper's SYN,
///   and its retry comes a second later), so a newcomer is accepted at once;
/// - a connection that has sent nothing within `silentTimeout` is closed, newcomer or not;
///   one that has not sent a whole head within `headTimeout` gets 408; a response not taken
///   within `writeTimeout` is dropped (a local scraper takes a page in milliseconds);
/// - past `maxClients` connections, room is made by closing, in this order, the oldest
///   silent one, the oldest partial head, the oldest writer held at least `idleEviction`:
///   complete requests are preferred; past `2 × maxClients`, the oldest writer of any age.
/// Every request head is bounded (`HTTPExchange.maxHeadBytes`). The page comes from `page`,
/// which renders the last tick's state and never reads /proc. Each response closes its
/// connection.
public final class MetricsServer: Sendable {
    public struct Limits: Sendable {
        public var maxClients = 64
        public var silentTimeout = 1.0
        public var headTimeout = 5.0
        public var writeTimeout = 5.0
        /// When full, a writer held this long may give its place to a newcomer.
        public var idleEviction = 1.0
        /// Connections accepted per round at most (the queue is drained over rounds).
        public var acceptPerRound = 1024
        public init() {}
    }

    public typealias Counters = HTTPExchange.Counters

    public let listenFD: Int32
    let limits: Limits
    let page: @Sendable () -> [UInt8]
    let health: @Sendable () -> String?
    let state = Mutex<(counters: Counters, stopping: Bool)>((Counters(), false))

    /// Serves on `listenFD` (made non-blocking here), a bound, listening SOCK_STREAM socket.
    /// - Parameter health: why /healthz fails (nil: healthy).
    public init(
        listenFD: Int32, limits: Limits = Limits(), page: @escaping @Sendable () -> [UInt8],
        health: @escaping @Sendable () -> String? = { nil }
    ) {
        self.listenFD = listenFD
        self.limits = limits
        self.page = page
        self.health = health
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
        if address.isIPv6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        // sockaddr_in and sockaddr_in6 share their first fields (family, port); only the
        // address's offset and the length differ.
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(family)
        let (offset, length) =
            address.isIPv6
            ? (MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!, MemoryLayout<sockaddr_in6>.size)
            : (MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!, MemoryLayout<sockaddr_in>.size)
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: address.port.bigEndian) {
                raw.baseAddress!.advanced(by: 2).copyMemory(from: $0.baseAddress!, byteCount: 2)
            }
            for (i, b) in address.address.enumerated() { raw[offset + i] = b }
        }
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(length)) }
        }
        // A deep queue (the kernel clamps it to net.core.somaxconn): with 64, a few hundred
        // silent connections from another user fill it and the scraper's SYN is dropped.
        if rc != 0 || listen(fd, SOMAXCONN) != 0 {
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
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
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
        /// Whether any byte came from it (a connection that never speaks is the first to go).
        var heard = false
    }

    func count(_ update: (inout Counters) -> Void) { state.withLock { update(&$0.counters) } }

    /// Which client to close to make room: the oldest silent one, then the oldest partial
    /// head, then the oldest writer held at least `idleEviction` (any writer when `force`).
    func victim(_ clients: [Client], now: Double, force: Bool) -> Int? {
        func oldest(_ keep: (Client) -> Bool) -> Int? {
            clients.indices.filter { keep(clients[$0]) }.min { clients[$0].since < clients[$1].since }
        }
        return oldest { $0.out == nil && !$0.heard }
            ?? oldest { $0.out == nil }
            ?? oldest { $0.out != nil && (force || now - $0.since >= limits.idleEviction) }
    }

    func serve() {
        var clients = [Client]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        defer { for c in clients { close(c.fd) } }
        while !state.withLock({ $0.stopping }) {
            let now = monotonicNow()
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            for c in clients {
                fds.append(pollfd(fd: c.fd, events: Int16(c.out == nil ? POLLIN : POLLOUT), revents: 0))
            }
            var wait = 0.25
            for c in clients {
                let deadline =
                    c.out != nil ? limits.writeTimeout : (c.heard ? limits.headTimeout : limits.silentTimeout)
                wait = min(wait, max(0, c.since + deadline - now))
            }
            let ready = poll(&fds, nfds_t(fds.count), Int32((wait * 1000).rounded(.up)))
            if ready < 0 && errno != EINTR { return }
            let after = monotonicNow()
            var finished = Set<Int32>()
            for (i, var client) in clients.enumerated() {
                let revents = fds[i + 1].revents
                if client.out == nil, revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let room = HTTPExchange.maxHeadBytes + 1 - client.head.count
                    let n = chunk.withUnsafeMutableBytes {
                        recv(client.fd, $0.baseAddress, min(room, $0.count), Int32(MSG_DONTWAIT))
                    }
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { finished.insert(client.fd); continue }
                    if n > 0 {
                        client.head += chunk[0..<n]
                        client.heard = true
                    }
                    let parsed = HTTPExchange.parse(client.head)
                    if parsed != .incomplete {
                        if case .reject = parsed { count { $0.rejected += 1 } } else { count { $0.responses += 1 } }
                        client.out = HTTPExchange.response(to: parsed, page: page, health: health)
                        client.head = []
                        client.since = after
                        // Most answers fit the socket's buffer: sent now, not a round later.
                        if !write(&client) { finished.insert(client.fd); continue }
                    }
                } else if client.out != nil, revents & Int16(POLLOUT | POLLHUP | POLLERR) != 0 {
                    if !write(&client) { finished.insert(client.fd); continue }
                }
                // Deadlines hold whatever the client trickles in.
                if client.out == nil, !client.heard, after - client.since >= limits.silentTimeout {
                    count { $0.timedOut += 1 }
                    finished.insert(client.fd)
                    continue
                } else if client.out == nil, after - client.since >= limits.headTimeout {
                    count { $0.timedOut += 1 }
                    client.out = HTTPExchange.response(to: .incomplete, page: page, health: health)
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
                for _ in 0..<limits.acceptPerRound {
                    let fd = cw_accept_nonblocking(listenFD)
                    if fd < 0 { break }
                    // A request already waiting marks a client that speaks at once (a scraper).
                    var pending: Int32 = 0
                    let heard = ioctl(fd, UInt(FIONREAD), &pending) == 0 && pending > 0
                    if clients.count >= limits.maxClients {
                        let force = clients.count >= 2 * limits.maxClients
                        if let index = victim(clients, now: after, force: force) {
                            close(clients[index].fd)
                            clients.remove(at: index)
                            count { $0.evicted += 1 }
                        } else if !heard || force {
                            // Nobody to make room and a newcomer that says nothing: it goes.
                            close(fd)
                            count { $0.evicted += 1 }
                            continue
                        }
                    }
                    clients.append(Client(fd: fd, since: after, heard: heard))
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
                send(
                    client.fd, raw.baseAddress! + client.sent, out.count - client.sent,
                    Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if n < 0 { return errno == EAGAIN || errno == EINTR }
            client.sent += n
        }
        shutdown(client.fd, Int32(SHUT_WR))
        return false
    }
}
