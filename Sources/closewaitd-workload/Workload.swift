import ArgumentParser
@preconcurrency import Glibc

@main
struct Workload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "closewaitd-workload",
        abstract: "Make real CLOSE_WAIT sockets on loopback, held by child processes, for tests and benchmarks.",
        discussion: """
            A peer process accepts every connection and shuts down its sending side (it keeps the \
            fd, so its FIN_WAIT2 end never times out); holder processes connect and never close, \
            so their sockets sit in CLOSE_WAIT. Traffic stays on 127.0.0.1 and ::1.

            When everything is set up it prints one JSON line starting with {"ready":true to \
            stdout, then runs until --duration ends or it gets SIGTERM/SIGINT, and kills every \
            child it started. The manifest (--manifest) has one line per CLOSE_WAIT socket and \
            holder: `pid fd inode kind`.
            """
    )

    @Option(help: "Holder processes.") var processes = 1
    @Option(help: "IPv4 CLOSE_WAIT sockets per holder.") var v4 = 1
    @Option(help: "IPv6 ([::1]) CLOSE_WAIT sockets per holder.") var v6 = 0
    @Option(help: "IPv4-mapped IPv6 (::ffff:127.0.0.1) CLOSE_WAIT sockets per holder.") var mapped = 0
    @Option(help: "Filler fds (/dev/null) per holder.") var filler = 0
    @Option(help: "The first N holders fork a child that shares all their sockets.") var shared = 0
    @Option(
        help: "Connections left unaccepted in a listen backlog after the client shut down (CLOSE_WAIT with inode 0).")
    var backlog = 0
    @Option(help: "Noise processes holding only filler fds.") var noise = 0
    @Option(help: "Filler fds per noise process.") var noiseFds = 0
    @Option(help: "Each holder adds this many IPv4 CLOSE_WAIT sockets per second after ready (a growing leak).")
    var growPerSecond = 0.0
    @Option(help: "Each holder stops growing at this many sockets.") var growMax = 100_000
    @Option(help: "Holders replaced per second after ready (one exits, a new one starts).") var churnPerSecond = 0.0
    @Option(
        help:
            "Each holder closes its oldest CLOSE_WAIT socket and opens a new one this often per second (a bounded pool that turns over)."
    ) var rotatePerSecond = 0.0
    @Option(help: "Soft RLIMIT_NOFILE for holders (0: raise to the hard limit).") var nofile = 0
    @Option(help: "Stop after this many seconds (at most 3600).") var duration = 300.0
    @Option(help: "Write the socket manifest to this file.") var manifest: String?
    @Option(
        help:
            "Each holder also keeps this many ESTABLISHED connections to a peer that never closes them (live connections, no CLOSE_WAIT)."
    ) var established = 0
    @Option(
        help:
            "The peer sends this many bytes on each connection before closing it; holders never read them (responses not read to the end: Recv-Q > 0 in CLOSE_WAIT)."
    ) var unreadBytes = 0
    @Option(help: "Holders rename themselves to these bytes, in hex (e.g. 1b5b324a for ESC [ 2 J): a hostile comm.")
    var commHex: String?

    /// The bytes of --comm-hex.
    var commBytes: [UInt8]? {
        guard let commHex else { return nil }
        var bytes = [UInt8]()
        var index = commHex.startIndex
        while index < commHex.endIndex {
            let next = commHex.index(index, offsetBy: 2, limitedBy: commHex.endIndex) ?? commHex.endIndex
            guard let byte = UInt8(commHex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    func validate() throws {
        guard duration > 0 && duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600]") }
        guard processes >= 0, v4 >= 0, v6 >= 0, mapped >= 0, filler >= 0, noise >= 0, noiseFds >= 0, backlog >= 0 else {
            throw ValidationError("counts must not be negative")
        }
        guard shared <= processes else { throw ValidationError("--shared must not exceed --processes") }
        guard backlog <= 1000 else { throw ValidationError("--backlog is at most 1000") }
        guard (0...10_000).contains(established) else { throw ValidationError("--established is between 0 and 10000") }
        guard (0...65536).contains(unreadBytes) else { throw ValidationError("--unread-bytes is between 0 and 65536") }
        if commHex != nil {
            guard let bytes = commBytes, commHex!.count % 2 == 0, !bytes.isEmpty, !bytes.contains(0) else {
                throw ValidationError("--comm-hex takes pairs of hex digits, no 00")
            }
        }
    }

    func run() throws {
        var coordinator = Coordinator(options: self)
        coordinator.start()
        coordinator.runUntilDone()
    }
}
