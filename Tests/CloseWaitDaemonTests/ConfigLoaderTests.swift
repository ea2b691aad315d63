import CloseWaitCore
@testable import CloseWaitDaemon
import Foundation
import Testing

/// Config files through the real TOML parser: the shipped default, and bad files with the
/// exact messages an operator sees.
@Suite struct ConfigLoaderTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../config/closewaitd.toml").standardized.path

    @Test func theShippedConfigIsValidAndMatchesTheBuiltInDefaults() throws {
        let settings = try ConfigLoader.load(path: Self.shipped).get()
        #expect(settings == Settings())
    }

    @Test func everyDocumentedExampleRuleParses() throws {
        // The commented rules in the shipped file, uncommented.
        let text = try String(contentsOfFile: Self.shipped, encoding: .utf8).split(separator: "\n").map { line in
            line.hasPrefix("# [[rule]]") || line.hasPrefix("# name") || line.hasPrefix("# match_")
                || line.hasPrefix("# ignore")
                || line.hasPrefix("# count_") || line.hasPrefix("# growth_") || line.hasPrefix("# exhaustion_")
                ? String(line.dropFirst(2)) : String(line)
        }.joined(separator: "\n")
        let settings = try ConfigLoader.parse(text, file: "example.toml").get()
        #expect(settings.rules.map(\.name) == ["bounded-pool", "orders", "batch"])
        #expect(settings.rules[2].matchNamespace == "batch")
        #expect(settings.rules[0].ignore)
        #expect(settings.rules[1].thresholds.countWarning == 20)
        #expect(settings.rules[1].thresholds.exhaustionCritical == 1800)
    }

    @Test(arguments: [
        (
            "[daemon]\ninterval = \"5 parsecs\"\n",
            ["bad.toml:2: daemon.interval: \"5 parsecs\" is not a time span (like \"30s\", \"5min\", \"1h\")"]
        ),
        (
            "[daemon]\nintervall = \"5s\"\n",
            ["bad.toml:2: daemon.intervall: unknown key; did you mean interval?"]
        ),
        (
            "[thresholds]\ncount_warning = 600\ncount_critical = 500\n",
            ["bad.toml:2: thresholds.count_warning: must not exceed count_critical"]
        ),
        (
            "[alerts]\nhold = 0\nreminder = true\n",
            [
                "bad.toml:2: alerts.hold: samples must be between 1 and 1000",
                "bad.toml:3: alerts.reminder: must be a time span like \"30s\", not a boolean",
            ]
        ),
        (
            "[[rule]]\nname = \"x\"\n\n[[rule]]\nname = \"y\"\nmatch_comm = \"java\"\nignore = \"yes\"\n",
            [
                "bad.toml:1: rule[1]: needs at least one of match_unit, match_comm, match_exe, match_container, match_pod, match_namespace",
                "bad.toml:7: rule[2].ignore: must be true or false, not a string",
            ]
        ),
        (
            "[daemon\ninterval = \"5s\"\n",
            ["bad.toml:1: TOML syntax error at column 8: Error while parsing table header: expected ']', saw '\\n'"]
        ),
        (
            "[alert]\nhold = 3\n",
            ["bad.toml:1: alert: unknown key; did you mean alerts?"]
        ),
        // Numbers that trapped the runtime (issue 8, row 1): rejected with a message instead.
        (
            "[alerts]\ncooldown = \"1e20\"\n",
            ["bad.toml:2: alerts.cooldown: \"1e20\" is not a time span (like \"30s\", \"5min\", \"1h\")"]
        ),
        (
            "[daemon]\ninterval = inf\nwindow = nan\n",
            [
                "bad.toml:2: daemon.interval: infinity is out of range (100ms–1h)",
                "bad.toml:3: daemon.window: nan is out of range (1s–1d)",
            ]
        ),
        (
            "[daemon]\nwindow = 1e300\n[thresholds]\nage_warning = 1e19\n",
            [
                "bad.toml:2: daemon.window: 1e+300s is out of range (1s–1d)",
                "bad.toml:4: thresholds.age_warning: 1e+19s is out of range (0s–365d)",
            ]
        ),
        (
            "[thresholds]\ngrowth_warning = nan\n",
            ["bad.toml:2: thresholds.growth_warning: nan is out of range (0.0–1000000.0)"]
        ),
        // Silent misconfigurations (row 10).
        (
            "[alerts]\nhold = \"0s\"\n",
            ["bad.toml:2: alerts.hold: 0s is out of range (a time span above 0s, at most 1d; or 1 to 1000 samples)"]
        ),
        (
            "[[rule]]\nname = \"long\"\nmatch_comm = \"elasticsearch-worker\"\n",
            [
                "bad.toml:3: rule[1].match_comm: matches only names of 20 bytes or more, but the kernel keeps at most 15 bytes of a comm (TASK_COMM_LEN), so it never matches; use match_exe for longer names"
            ]
        ),
        (
            "[[rule]]\nname = \"nul\"\nmatch_comm = \"ja\\u0000va\"\n",
            ["bad.toml:3: a NUL escape (\\u0000) in a string: no process, path or unit name holds a NUL"]
        ),
        (
            "[[rule]]\nname = \"bell\"\nmatch_exe = \"/usr/bin/\\u001b[2J\"\n",
            ["bad.toml:3: rule[1].match_exe: must not contain control characters or NUL (\"/usr/bin/\\x1b[2J\")"]
        ),
        (
            "[metrics]\nlisten = \"localhost:9838\"\n",
            [
                "bad.toml:2: metrics.listen: must be a numeric IPv4:PORT or [IPv6]:PORT with a port from 1 to 65535, e.g. \"127.0.0.1:9838\" (no host names)"
            ]
        ),
    ])
    func badFilesGiveExactMessages(text: String, expected: [String]) {
        guard case let .failure(errors) = ConfigLoader.parse(text, file: "bad.toml") else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(errors.problems.map(\.description) == expected)
    }

    @Test func invalidUTF8IsNamedNotReplaced() {
        let bytes: [UInt8] = Array("[daemon]\ninterval = \"5s\" # ".utf8) + [0xff, 0x0a]
        guard case let .failure(errors) = ConfigLoader.parse(bytes, file: "bad.toml") else {
            Issue.record("accepted invalid UTF-8")
            return
        }
        #expect(errors.description == "bad.toml:2: not valid UTF-8: byte 0xff at column 19 (TOML files are UTF-8)")
    }

    /// Files an admin may name by mistake (row 7): refused at once, never read or waited on.
    @Test func aFIFOADeviceOrADirectoryIsRefusedWithoutBlocking() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("cw-fifo-\(getpid())").path
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        for (path, kind) in [(fifo, "a FIFO"), ("/dev/zero", "a character device"), ("/tmp", "a directory")] {
            guard case let .failure(errors) = ConfigLoader.load(path: path) else {
                Issue.record("loaded \(path)")
                continue
            }
            #expect(errors.description == "\(path): cannot read the file: \(path) is \(kind), not a regular file")
        }
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("cw-big-\(getpid()).toml").path
        FileManager.default.createFile(
            atPath: big, contents: Data(repeating: 0x23, count: ConfigLoader.maximumSize + 1))
        defer { unlink(big) }
        guard case let .failure(errors) = ConfigLoader.load(path: big) else {
            Issue.record("loaded a 1 MiB config"); return
        }
        #expect(errors.description.hasSuffix("is larger than 1024 KiB; refusing to read it"))
    }

    @Test func missingFileIsAProblemNamingIt() {
        guard case let .failure(errors) = ConfigLoader.load(path: "/nonexistent/closewaitd.toml") else {
            Issue.record("loaded a missing file")
            return
        }
        #expect(
            errors.description
                == "/nonexistent/closewaitd.toml: cannot read the file: open /nonexistent/closewaitd.toml: No such file or directory"
        )
    }
}
