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
            line.hasPrefix("# [[rule]]") || line.hasPrefix("# name") || line.hasPrefix("# match_") || line.hasPrefix("# ignore")
                || line.hasPrefix("# count_") || line.hasPrefix("# growth_") || line.hasPrefix("# exhaustion_")
                ? String(line.dropFirst(2)) : String(line)
        }.joined(separator: "\n")
        let settings = try ConfigLoader.parse(text, file: "example.toml").get()
        #expect(settings.rules.map(\.name) == ["bounded-pool", "orders"])
        #expect(settings.rules[0].ignore)
        #expect(settings.rules[1].thresholds.countWarning == 20)
        #expect(settings.rules[1].thresholds.exhaustionCritical == 1800)
    }

    @Test(arguments: [
        ("[daemon]\ninterval = \"5 parsecs\"\n",
         ["bad.toml:2: daemon.interval: \"5 parsecs\" is not a time span (like \"30s\", \"5min\", \"1h\")"]),
        ("[daemon]\nintervall = \"5s\"\n",
         ["bad.toml:2: daemon.intervall: unknown key; did you mean interval?"]),
        ("[thresholds]\ncount_warning = 600\ncount_critical = 500\n",
         ["bad.toml:2: thresholds.count_warning: must not exceed count_critical"]),
        ("[alerts]\nhold = 0\nreminder = true\n",
         ["bad.toml:2: alerts.hold: samples must be between 1 and 1000",
          "bad.toml:3: alerts.reminder: must be a time span like \"30s\", not a boolean"]),
        ("[[rule]]\nname = \"x\"\n\n[[rule]]\nname = \"y\"\nmatch_comm = \"java\"\nignore = \"yes\"\n",
         ["bad.toml:1: rule[1]: needs at least one of match_unit, match_comm, match_exe",
          "bad.toml:7: rule[2].ignore: must be true or false, not a string"]),
        ("[daemon\ninterval = \"5s\"\n",
         ["bad.toml:1: TOML syntax error at column 8: Error while parsing table header: expected ']', saw '\\n'"]),
        ("[alert]\nhold = 3\n",
         ["bad.toml:1: alert: unknown key; did you mean alerts?"]),
    ])
    func badFilesGiveExactMessages(text: String, expected: [String]) {
        guard case let .failure(errors) = ConfigLoader.parse(text, file: "bad.toml") else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(errors.problems.map(\.description) == expected)
    }

    @Test func missingFileIsAProblemNamingIt() {
        guard case let .failure(errors) = ConfigLoader.load(path: "/nonexistent/closewaitd.toml") else {
            Issue.record("loaded a missing file")
            return
        }
        #expect(errors.description == "/nonexistent/closewaitd.toml: cannot read the file: open /nonexistent/closewaitd.toml: No such file or directory")
    }
}
