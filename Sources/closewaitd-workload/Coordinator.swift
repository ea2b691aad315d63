import CClock
@preconcurrency import CLinuxShim
@preconcurrency import Glibc

/// Coordinator forks the peer (acceptor), the holders, their sharers and the noise processes,
/// collects the manifest from them over a pipe, and ends them all by pid.
struct Coordinator {
    let options: Workload
    var port4: UInt16 = 0
    var port6: UInt16 = 0
    /// Every listening port of the peer: one 4-tuple space of ~28k ephemeral ports per port.
    var ports4: [UInt16] = []
    var ports6: [UInt16] = []
    /// One peer process per listener: no process here may hold more than the hard
    /// RLIMIT_NOFILE (20000 on this machine class, and raising it takes CAP_SYS_RESOURCE).
    var acceptorPids: [pid_t] = []
    var holders: [pid_t] = []
    var sharers: [pid_t] = []
    var noisePids: [pid_t] = []
    var expectedReady = 0
    var readyCount = 0
    var manifestLines: [String] = []
    var manifestFile: UnsafeMutablePointer<FILE>?
    var reportRead: Int32 = -1
    var reportWrite: Int32 = -1
    var signalFd: Int32 = -1
    var backlogFds: [Int32] = []
    var backlogPort: UInt16 = 0
    /// The listener whose peer keeps connections open (--established).
    var keepPort: UInt16 = 0
    var pending = ""
    var isReady = false
    let deadline: Double
    var nextHolderIndex = 0

    init(options: Workload) {
        self.options = options
        deadline = monotonicSeconds() + options.duration
    }

    mutating func start() {
        raiseNofile(to: 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in [SIGTERM, SIGINT, SIGCHLD, SIGHUP] { sigaddset(&mask, signal) }
        sigprocmask(SIG_BLOCK, &mask, nil)
        signalFd = signalfd(-1, &mask, Int32(SFD_CLOEXEC))
        var ends: [Int32] = [0, 0]
        if pipe(&ends) != 0 { Loopback.fail("pipe") }
        reportRead = ends[0]
        reportWrite = ends[1]
        if let path = options.manifest {
            manifestFile = fopen(path, "w")
            if manifestFile == nil { Loopback.fail("open manifest \(path)") }
        }

        // One listener (and one peer process) per 15k sockets: the loopback 4-tuples never run
        // out of ephemeral ports, and no peer needs more fds than the hard limit allows.
        let total4 =
            options.processes * (options.v4 + options.mapped) + Int(options.growPerSecond * options.duration)
            * options.processes
        let total6 = options.processes * options.v6
        let listeners4 = (0..<max(1, min(64, total4 / 15_000 + 1))).map { _ in Loopback.listener(v6: false) }
        let listeners6 = (0..<max(1, min(64, total6 / 15_000 + 1))).map { _ in Loopback.listener(v6: true) }
        ports4 = listeners4.map(\.port)
        ports6 = listeners6.map(\.port)
        port4 = ports4[0]
        port6 = ports6[0]
        let listenFds = (listeners4 + listeners6).map(\.fd)
        let unread = options.unreadBytes
        for fd in listenFds {
            acceptorPids.append(spawn { Coordinator.acceptLoop([fd], send: unread) })
        }
        for fd in listenFds { close(fd) }

        if options.established > 0 {
            let keep = Loopback.listener(v6: false)
            keepPort = keep.port
            acceptorPids.append(spawn { Coordinator.acceptLoop([keep.fd], send: 0, shutDown: false) })
            close(keep.fd)
        }
        if options.backlog > 0 {
            // Nobody accepts on this listener: each client shuts down its side, so the
            // kernel's half of the connection waits in the accept queue in CLOSE_WAIT, inode 0.
            let listener = Loopback.listener(v6: false, backlog: Int32(options.backlog + 16))
            backlogPort = listener.port
            backlogFds.append(listener.fd)
            for _ in 0..<options.backlog {
                let fd = Loopback.connect(kind: .v4, port: listener.port)
                shutdown(fd, Int32(SHUT_WR))
                backlogFds.append(fd)
            }
        }
        // Noise first: forking thousands of processes while holders connect would starve the peer.
        for _ in 0..<options.noise {
            let fds = options.noiseFds
            let write = reportWrite
            noisePids.append(
                spawn {
                    raiseNofile(to: 0)
                    for _ in 0..<fds { _ = open("/dev/null", O_RDONLY) }
                    report(write, "R \(getpid())\n")
                    Coordinator.idle(until: nil)
                })
            expectedReady += 1
        }
        for _ in 0..<options.processes { startHolder() }
    }

    /// Forks a holder; with sharing it forks its sharer child too.
    mutating func startHolder() {
        let index = nextHolderIndex
        nextHolderIndex += 1
        let o = options
        let write = reportWrite
        let (p4, p6) = (ports4, ports6)
        let keepPort = self.keepPort
        let share = index < o.shared
        let pid = spawn {
            if let comm = o.commBytes { setComm(comm) }
            raiseNofile(to: o.nofile)
            for _ in 0..<o.filler { _ = open("/dev/null", O_RDONLY) }
            var made: [(Int32, UInt64, Loopback.Kind)] = []
            func leak(_ kind: Loopback.Kind) {
                let ports = kind == .v6 ? p6 : p4
                let fd = Loopback.connect(kind: kind, port: ports[(index &* 7919 &+ made.count) % ports.count])
                if !Loopback.awaitPeerClose(fd) { Loopback.fail("peer did not close within 60 s") }
                made.append((fd, Loopback.inode(fd), kind))
            }
            for _ in 0..<o.v4 { leak(.v4) }
            for _ in 0..<o.v6 { leak(.v6) }
            for _ in 0..<o.mapped { leak(.mapped) }
            for _ in 0..<o.established { _ = Loopback.connect(kind: .v4, port: keepPort) }
            var lines = made.map { "S \(getpid()) \($0.0) \($0.1) \($0.2.rawValue)\n" }
            if share {
                let parent = getpid()
                let sharer = fork()
                if sharer == 0 {
                    sigprocmask(SIG_SETMASK, &emptySignalSet, nil)
                    let me = getpid()
                    for (fd, inode, kind) in made { report(write, "S \(me) \(fd) \(inode) \(kind.rawValue)\n") }
                    report(write, "R \(me) sharer-of \(parent)\n")
                    Coordinator.idle(until: nil)
                }
                lines.append("C \(sharer)\n")
            }
            for line in lines { report(write, line) }
            report(write, "R \(getpid())\n")
            if o.rotatePerSecond > 0 {
                Coordinator.holdAndRotate(options: o, ports: p4, held: made.map { ($0.0, $0.1) }, report: write)
            }
            Coordinator.holdAndGrow(options: o, ports: p4, report: write)
        }
        holders.append(pid)
        expectedReady += share ? 2 : 1
    }

    /// The peer: accepts every connection, sends `send` bytes (a response nobody reads), and
    /// shuts down its sending side, keeping the fd.
    static func acceptLoop(_ listeners: [Int32], send: Int, shutDown: Bool = true) -> Never {
        let response = [UInt8](repeating: UInt8(ascii: "r"), count: send)
        raiseNofile(to: 0)
        for fd in listeners { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var held: [Int32] = []
        var entries = listeners.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let parent = getppid()
        while true {
            if getppid() != parent { exit(0) }
            if poll(&entries, nfds_t(entries.count), 1000) <= 0 { continue }
            for entry in entries where entry.revents & Int16(POLLIN) != 0 {
                // Drain the accept queue (the listeners are non-blocking).
                while true {
                    let fd = accept(entry.fd, nil, nil)
                    if fd < 0 {
                        if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                        break
                    }
                    if !response.isEmpty {
                        _ = response.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    if shutDown { shutdown(fd, Int32(SHUT_WR)) }
                    held.append(fd)
                }
            }
        }
    }

    /// A holder after setup: never closes; adds sockets at the growth rate, if any.
    static func holdAndGrow(options o: Workload, ports: [UInt16], report write: Int32) -> Never {
        guard o.growPerSecond > 0 else { idle(until: nil) }
        let parent = getppid()
        let interval = 1.0 / o.growPerSecond
        var next = monotonicSeconds() + interval
        var count = o.v4 + o.v6 + o.mapped
        while true {
            if getppid() != parent { exit(0) }
            let now = monotonicSeconds()
            if now < next || count >= o.growMax {
                usleep(UInt32(max(1000, min(200_000, (next - now) * 1e6))))
                continue
            }
            next += interval
            let fd = Loopback.connect(kind: .v4, port: ports[count % ports.count])
            if Loopback.awaitPeerClose(fd) {
                report(write, "S \(getpid()) \(fd) \(Loopback.inode(fd)) v4\n")
                count += 1
            }
        }
    }

    /// A bounded pool whose connections turn over: closes its oldest CLOSE_WAIT socket and
    /// opens a new one at `--rotate-per-second`, so the count stays put while inodes change.
    static func holdAndRotate(options o: Workload, ports: [UInt16], held: [(Int32, UInt64)], report write: Int32)
        -> Never
    {
        let parent = getppid()
        let interval = 1.0 / o.rotatePerSecond
        var pool = held
        var next = monotonicSeconds() + interval
        var made = 0
        while true {
            if getppid() != parent { exit(0) }
            let now = monotonicSeconds()
            if now < next {
                usleep(UInt32(max(1000, min(200_000, (next - now) * 1e6))))
                continue
            }
            next += interval
            let fd = Loopback.connect(kind: .v4, port: ports[made % ports.count])
            made += 1
            guard Loopback.awaitPeerClose(fd) else { close(fd); continue }
            report(write, "S \(getpid()) \(fd) \(Loopback.inode(fd)) v4\n")
            pool.append((fd, Loopback.inode(fd)))
            if !pool.isEmpty {
                let (oldFd, oldInode) = pool.removeFirst()
                close(oldFd)
                report(write, "D \(getpid()) \(oldInode)\n")
            }
        }
    }

    /// Waits for a signal or for the parent to go away.
    static func idle(until: Double?) -> Never {
        let parent = getppid()
        while true {
            if getppid() != parent { exit(0) }
            sleep(1)
        }
    }

    /// Forks; the child runs `body` (which never returns) with default signal handling.
    func spawn(_ body: () -> Never) -> pid_t {
        let pid = fork()
        if pid < 0 { Loopback.fail("fork") }
        if pid == 0 {
            sigprocmask(SIG_SETMASK, &emptySignalSet, nil)
            close(reportRead)
            if signalFd >= 0 { close(signalFd) }
            for fd in backlogFds { close(fd) }
            body()
        }
        return pid
    }

    mutating func runUntilDone() {
        var entries = [
            pollfd(fd: reportRead, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0),
        ]
        var nextChurn = options.churnPerSecond > 0 ? monotonicSeconds() + 1 / options.churnPerSecond : Double.infinity
        var buffer = [UInt8](repeating: 0, count: 65536)
        // Only a peer (no holders): ready at once, for clients made elsewhere.
        if expectedReady == 0 && !isReady { announceReady() }
        loop: while true {
            let now = monotonicSeconds()
            if now >= deadline { break }
            if isReady && now >= nextChurn {
                churnOne()
                nextChurn += 1 / options.churnPerSecond
            }
            let wait = min(deadline, nextChurn) - now
            let timeout = Int32(max(1, min(1000, wait * 1000)))
            if poll(&entries, 2, timeout) <= 0 { continue }
            if entries[0].revents & Int16(POLLIN) != 0 {
                let n = read(reportRead, &buffer, buffer.count)
                if n > 0 { consume(buffer[0..<n]) }
            }
            if entries[1].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                _ = read(signalFd, &info, MemoryLayout<signalfd_siginfo>.size)
                switch Int32(info.ssi_signo) {
                case SIGTERM, SIGINT, SIGHUP: break loop
                default: reap()
                }
            }
        }
        stopAll()
    }

    mutating func consume(_ bytes: ArraySlice<UInt8>) {
        pending += String(decoding: bytes, as: UTF8.self)
        while let newline = pending.firstIndex(of: "\n") {
            let line = String(pending[..<newline])
            pending.removeSubrange(...newline)
            let fields = line.split(separator: " ")
            switch fields.first {
            case "S":
                writeManifest(fields.dropFirst().joined(separator: " "))
            case "D":  // a rotating pool closed a socket: `D pid inode`
                writeManifest(line)
            case "R":
                readyCount += 1
                if fields.count >= 4, fields[2] == "sharer-of", let pid = pid_t(fields[1]) { sharers.append(pid) }
                if !isReady && readyCount >= expectedReady { announceReady() }
            default:
                break
            }
        }
    }

    mutating func writeManifest(_ line: String) {
        if let manifestFile {
            fputs(line + "\n", manifestFile)
            if isReady { fflush(manifestFile) }
        }
    }

    mutating func announceReady() {
        isReady = true
        if let manifestFile { fflush(manifestFile) }
        let total = options.processes * (options.v4 + options.v6 + options.mapped)
        func list(_ pids: [pid_t]) -> String { "[" + pids.map(String.init).joined(separator: ",") + "]" }
        print(
            "{\"ready\":true,\"coordinator\":\(getpid()),\"acceptor\":\(acceptorPids[0]),\"acceptors\":\(list(acceptorPids)),\"holders\":\(list(holders)),"
                + "\"sharers\":\(list(sharers)),\"noise\":\(list(noisePids)),\"port4\":\(port4),\"port6\":\(port6),"
                + "\"ports4\":\(list(ports4.map(pid_t.init))),\"ports6\":\(list(ports6.map(pid_t.init))),"
                + "\"backlogPort\":\(backlogPort),\"backlog\":\(options.backlog),\"keepPort\":\(keepPort),\"sockets\":\(total)}"
        )
        fflush(stdout)
    }

    /// Replaces the oldest holder: it is killed (its sockets vanish) and a new one starts.
    mutating func churnOne() {
        guard !holders.isEmpty else { return }
        let victim = holders.removeFirst()
        kill(victim, SIGKILL)
        waitpid(victim, nil, 0)
        writeManifest("X \(victim)")
        startHolder()
    }

    func reap() {
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
    }

    /// Ends every child by pid and waits for each.
    mutating func stopAll() {
        let all = holders + sharers + noisePids + acceptorPids
        for pid in all where pid > 0 { kill(pid, SIGKILL) }
        for pid in all where pid > 0 { waitpid(pid, nil, 0) }
        reap()
        if let manifestFile { fclose(manifestFile) }
    }
}

nonisolated(unsafe) var emptySignalSet: sigset_t = {
    var set = sigset_t()
    sigemptyset(&set)
    return set
}()

func report(_ fd: Int32, _ line: String) {
    var copy = line
    copy.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

func monotonicSeconds() -> Double { cw_monotonic_seconds() }

/// Sets the soft RLIMIT_NOFILE to `soft`; with 0, raises it as far as allowed: as root, the
/// hard limit too, up to fs.nr_open (the peer of a large workload holds every connection).
/// Renames the calling (single-threaded) process: what prctl(PR_SET_NAME) does, through
/// /proc/self/comm (any bytes but NUL; the kernel keeps the first 15).
func setComm(_ bytes: [UInt8]) {
    let fd = open("/proc/self/comm", O_WRONLY)
    guard fd >= 0 else { Loopback.fail("open /proc/self/comm") }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

func raiseNofile(to soft: Int) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if soft > 0 {
        limit.rlim_cur = min(rlim_t(soft), limit.rlim_max)
    } else {
        var raised = limit
        raised.rlim_cur = 1_048_576
        raised.rlim_max = max(limit.rlim_max, 1_048_576)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return }
        limit.rlim_cur = limit.rlim_max
    }
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
