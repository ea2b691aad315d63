@testable import CloseWaitCore
import Testing

@Suite struct SettingsTests {
    static let text = """
        [daemon]
        interval = "10s"
        sauce = "auto"

        [thresholds]
        count_warning = 600
        count_critical = 500

        [[rule]]
        name = "pool"
        match_comm = "pgbouncer"
        ignore = true

        [[rule]]
        match_unit = "x.service"
        count_warnin = 3
        """

    static let node = ConfigNode.table([
        "daemon": .table(["interval": .string("10s"), "sauce": .string("auto")]),
        "thresholds": .table(["count_warning": .int(600), "count_critical": .int(500)]),
        "rule": .array([
            .table(["name": .string("pool"), "match_comm": .string("pgbouncer"), "ignore": .bool(true)]),
            .table(["match_unit": .string("x.service"), "count_warnin": .int(3)]),
        ]),
    ])

    @Test func everyProblemWithFileLineAndKey() throws {
        let result = SettingsParser.parse(Self.node, file: "/etc/closewaitd/closewaitd.toml", text: Self.text)
        guard case let .failure(errors) = result else { Issue.record("expected failure"); return }
        let lines = errors.problems.map(\.description)
        #expect(
            lines == [
                "/etc/closewaitd/closewaitd.toml:3: daemon.sauce: unknown key; did you mean source?",
                "/etc/closewaitd/closewaitd.toml:6: thresholds.count_warning: must not exceed count_critical",
                "/etc/closewaitd/closewaitd.toml:14: rule[2]: needs a name",
                "/etc/closewaitd/closewaitd.toml:16: rule[2].count_warnin: unknown key; did you mean count_warning?",
            ])
    }

    @Test func validDocumentBecomesSettings() throws {
        let node = ConfigNode.table([
            "daemon": .table(["interval": .string("2s"), "window": .string("1min"), "source": .string("proc")]),
            "alerts": .table(["hold": .string("30s"), "reminder": .string("0"), "clear_ratio": .double(0.5)]),
            "thresholds": .table([
                "age_warning": .string("1h 30min"), "growth_warning": .int(2), "total_warning": .int(10),
            ]),
            "rule": .array([
                .table(["name": .string("r"), "match_exe": .string("/usr/bin/*"), "count_warning": .int(7)])
            ]),
        ])
        let settings = try SettingsParser.parse(node, file: "f", text: "").get()
        #expect(settings.interval == 2 && settings.window == 60 && settings.source == .proc)
        #expect(settings.hold == .duration(30))
        #expect(settings.reminder == 0 && settings.clearRatio == 0.5)
        #expect(settings.thresholds.ageWarning == 5400 && settings.thresholds.growthWarning == 2)
        #expect(settings.totalWarning == 10)
        #expect(settings.rules.first?.thresholds.countWarning == 7)
        #expect(settings.rules.first?.thresholds.ageWarning == 5400)  // inherits [thresholds]
    }

    @Test(arguments: [
        ("daemon", "interval", ConfigNode.int(0), "out of range"),
        ("daemon", "interval", .bool(true), "must be a time span like \"30s\", not a boolean"),
        ("daemon", "source", .string("ebpf"), "must be auto, netlink or proc"),
        ("alerts", "hold", .int(0), "samples must be between 1 and 1000"),
        ("alerts", "hold", .string("soon"), "is not a time span"),
        ("alerts", "clear_ratio", .double(1.5), "out of range"),
        ("thresholds", "min_count", .string("5"), "must be an integer, not a string"),
        ("thresholds", "age_warning", .string("5 parsecs"), "is not a time span"),
    ])
    func wrongTypesAndRanges(section: String, key: String, value: ConfigNode, message: String) {
        let result = SettingsParser.parse(
            .table([section: .table([key: value])]), file: "f", text: "[\(section)]\n\(key) = x\n")
        guard case let .failure(errors) = result else { Issue.record("expected failure"); return }
        #expect(errors.problems.count == 1)
        #expect(errors.problems[0].key == "\(section).\(key)")
        #expect(errors.problems[0].line == 2)
        #expect(errors.problems[0].message.contains(message), "\(errors.problems[0].message)")
    }

    @Test(arguments: [
        ("30s", 30.0), ("5min", 300), ("1h 30min", 5400), ("250ms", 0.25), ("2d", 172_800), ("45", 45), ("1.5h", 5400),
    ])
    func timeSpans(text: String, seconds: Double) {
        #expect(TimeSpan.parse(text) == seconds)
    }

    @Test func badTimeSpans() {
        for text in ["", "5 parsecs", "min", "-3s", "5m5"] { #expect(TimeSpan.parse(text) == nil, "\(text)") }
        #expect(TimeSpan.format(840) == "14min")
        #expect(TimeSpan.format(0.5) == "500ms")
        #expect(TimeSpan.format(7500) == "2h 5min")
    }
}
