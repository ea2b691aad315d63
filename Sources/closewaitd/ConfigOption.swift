import ArgumentParser
import CloseWaitCore
import CloseWaitDaemon
@preconcurrency import Glibc

/// ConfigOption is `--config` for the commands that read the host themselves (snapshot,
/// explain): only the config's `[containers]` roots matter to them, so the containers are named
/// as the daemon names them (a DaemonSet reads the node's runtimes under /host).
struct ConfigOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The config file whose [containers] roots are read for container names (default /etc/closewaitd/closewaitd.toml when it exists).",
            valueName: "path"))
    var config: String?

    /// The roots; a named config that is wrong stops the command (exit 78), the default one
    /// only warns and the built-in roots are used.
    func containerRoots() throws -> ContainerStateRoots {
        let path = config ?? ConfigLoader.defaultPath
        if config == nil && access(path, F_OK) != 0 { return ContainerStateRoots() }
        switch ConfigLoader.load(path: path) {
        case let .success(settings): return settings.containers
        case let .failure(errors):
            printError(errors.description)
            if config != nil { throw ExitCode(78) }
            printError("closewaitd: \(path) has errors; container names are read from the built-in roots")
            return ContainerStateRoots()
        }
    }
}
