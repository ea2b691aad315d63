import ArgumentParser
import CloseWaitDaemon

@main
struct Closewaitd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "closewaitd",
        abstract: "Catch CLOSE_WAIT socket leaks per process before they take a host down.",
        discussion: """
            A socket sits in CLOSE_WAIT when the peer closed the connection and the local process \
            never closed its side. The kernel never times it out: each one holds a file descriptor \
            until the process calls close() or exits. closewaitd samples the kernel's TCP tables, \
            finds the owning process of each CLOSE_WAIT socket, and tells you which process leaks, \
            to which peer, how fast and since when.

            Run `closewaitd snapshot` for a one-off look; run `closewaitd run` as a systemd \
            service to watch continuously and alert in the journal (journalctl -u closewaitd), \
            and `closewaitd status` to see what it tracks. Thresholds live in \
            /etc/closewaitd/closewaitd.toml; check edits with `closewaitd check-config`.
            """,
        version: Daemon.version,
        subcommands: [
            SnapshotCommand.self, RunCommand.self, StatusCommand.self, ExplainCommand.self, CheckConfigCommand.self,
            PolkitRuleCommand.self, BPFLoaderCommand.self,
        ]
    )
}
