import ArgumentParser
import CloseWaitCore
import CloseWaitDaemon
@preconcurrency import Glibc

/// `closewaitd polkit-rule`: the polkit rule that lets the service restart the units its
/// restart_unit actions name, and nothing more.
struct PolkitRuleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "polkit-rule",
        abstract: "Print the polkit rule restart_unit actions need.",
        discussion: """
            The service runs as the unprivileged user closewaitd (static, with DynamicUser='s \
            sandbox); systemd asks polkit whether that user may restart a unit. The rule printed allows the verb "restart" on exactly the \
            units the config's restart_unit actions name (match_unit), for the user closewaitd, \
            and nothing else. Install it with
                closewaitd polkit-rule > \(PolkitRule.path)
            and write it again whenever those actions change. Exits 1 when no action restarts \
            a unit, 78 when the config has errors.
            """
    )

    @Argument(help: ArgumentHelp("The config file.", valueName: "path"))
    var path: String = ConfigLoader.defaultPath

    @Option(help: ArgumentHelp("The user the service runs as (the unit's User=, or its name with DynamicUser=yes)."))
    var user = "closewaitd"

    func run() throws {
        switch ConfigLoader.load(path: path) {
        case let .success(settings):
            let units = Set(settings.actions.specs.compactMap(\.unit))
            guard !units.isEmpty else {
                printError("closewaitd: no [[action]] in \(path) has restart_unit = true: there is nothing to allow")
                throw ExitCode(1)
            }
            guard !user.isEmpty,
                user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
            else {
                printError("closewaitd: --user must be a plain user name")
                throw ExitCode(64)
            }
            if getpwnam(user) == nil {
                printError(
                    "closewaitd: warning: there is no user \(user) in the user database; dbus-daemon and polkit "
                        + "cannot name a dynamic user: create it with systemd-sysusers closewaitd.conf")
            }
            print(PolkitRule.render(units: Array(units), user: user), terminator: "")
        case let .failure(errors):
            printError(errors.description)
            throw ExitCode(78)
        }
    }
}
