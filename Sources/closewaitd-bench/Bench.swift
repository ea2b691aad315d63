import ArgumentParser
import CloseWaitCore
import CloseWaitLinux
import Foundation
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// WorkloadSize is one row of the issue's reference table.
struct WorkloadSize {
    var name: String
    var holders: Int
    var perHolder: Int
    var v6Share: Double
    var filler: Int
    var noise: Int
    var noiseFds: Int

    var total: Int { holders * perHolder }

    static let all: [String: WorkloadSize] = [
        // ~100 CLOSE_WAIT / ~3k fds / ~100 processes
        "small": WorkloadSize(
            name: "small", holders: 10, perHolder: 10, v6Share: 0.1, filler: 20, noise: 88, noiseFds: 28),
        // ~10k / ~140k / ~570
        "medium": WorkloadSize(
            name: "medium", holders: 100, perHolder: 100, v6Share: 0.1, filler: 300, noise: 468, noiseFds: 190),
        // ~50k / ~656k / ~2,070
        "large": WorkloadSize(
            name: "large", holders: 200, perHolder: 250, v6Share: 0.1, filler: 1000, noise: 1868, noiseFds: 190),
    ]

    func arguments(closeWait: Bool) -> [String] {
        let v6 = closeWait ? Int(Double(perHolder) * v6Share) : 0
        let v4 = closeWait ? perHolder - v6 : 0
        return [
            "--processes", "\(holders)", "--v4", "\(v4)", "--v6", "\(v6)", "--filler", "\(filler)",
            "--noise", "\(noise)", "--noise-fds", "\(noiseFds)",
        ]
    }
}

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "closewaitd-bench",
        abstract: "Measure closewaitd's sampler against `ss -tnp state close-wait` on real loopback workloads.",
        discussion: """
            For each workload size it starts closewaitd-workload (real CLOSE_WAIT sockets on \
            loopback), then measures side by side: ss -tnp state close-wait and a cold \
            `closewaitd snapshot --json` as whole processes; the daemon's sampler in-process tick \
            after tick on an idle host, a plateau, a growing leak (1% new sockets per tick) and \
            under churn; the daemon's peak RSS and CPU per minute at a 5 s interval. Every tick's \
            attribution is checked against the workload's manifest. Prints medians (min-max) and \
            ratios to ss. Loopback only; every workload is bounded and ended by pid.
            """
    )

    @Option(help: "Comma-separated sizes: small, medium, large.") var sizes = "small,medium"
    @Option(help: "Whole-process runs of ss and snapshot per size.") var runs = 7
    @Option(help: "In-process sampler ticks per regime.") var ticks = 20
    @Option(help: "Seconds to count the daemon's CPU after a 10 s warm-up (305: one periodic full walk included).")
    var daemonSeconds = 305.0
    @Option(help: "Fd-count paths to measure: size (Linux 6.2+), readdir (older kernels), comma-separated.")
    var fdCount = "size,readdir"
    @Option(help: "Directory holding closewaitd and closewaitd-workload (default: next to this binary).") var binDir:
        String?
    @Flag(help: "A quick run that checks the benchmark still works (CI): small size, few runs.") var smoke = false
    @Option(help: "Also write the results as Markdown to this file.") var markdown: String?
    @Option(help: "Instead of the benchmark, soak the daemon for this many seconds (make soak).") var soak: Double?
    @Option(help: "Comma-separated counts of network namespaces for the namespace rows (0: none).")
    var namespaces = "100,500"
    @Option(help: "Scanners to measure side by side: poll, ebpf, comma-separated.") var scanners = "poll,ebpf"

    func run() throws {
        let dir =
            binDir
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        if let soak {
            guard soak >= 30 && soak <= 4 * 3600 else { throw ValidationError("--soak takes 30 s to 4 h") }
            print(machineDescription())
            if try !Soak(seconds: soak, binDir: dir).run() { throw ExitCode(1) }
            return
        }
        var config = BenchConfig(binDir: dir, runs: runs, ticks: ticks, daemonSeconds: daemonSeconds)
        // The pipeline here loads the eBPF programs as the daemon does: in a loader process.
        EBPFScanner.helper = dir + "/closewaitd"
        var names = sizes.split(separator: ",").map(String.init)
        var namespaceCounts = namespaces.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        if smoke {
            namespaceCounts = [3]
            names = ["small"]
            config.runs = 3
            config.ticks = 4
            config.daemonSeconds = 6
        }
        var report = Report()
        report.header = machineDescription()
        try report.emit(report.header, markdown: markdown)
        var failures = 0
        let methods = try fdCount.split(separator: ",").map { item in
            guard let method = FdScanner.FdCountMethod(rawValue: String(item)) else {
                throw ValidationError("unknown fd count \(item)")
            }
            return method
        }
        let chosen = try scanners.split(separator: ",").map { item in
            guard let scanner = ScannerChoice(rawValue: String(item)), scanner != .auto else {
                throw ValidationError("unknown scanner \(item) (poll or ebpf)")
            }
            return scanner
        }
        for name in names {
            guard let size = WorkloadSize.all[name] else { throw ValidationError("unknown size \(name)") }
            for scanner in chosen {
                // The fd-count method matters to polling's owner index; eBPF counts each holder
                // the same way on both, so it is measured once.
                for method in scanner == .ebpf ? [methods[0]] : methods {
                    var sizeConfig = config
                    sizeConfig.fdCount = method
                    sizeConfig.scanner = scanner
                    var bench = BenchRun(size: size, config: sizeConfig)
                    let result = try bench.run()
                    try report.add(result.text, markdown: markdown)
                    failures += result.correctnessFailures
                }
            }
        }
        for count in namespaceCounts {
            let text = try NamespaceRun(count: count, config: config, scanners: chosen).run()
            try report.add(text, markdown: markdown)
        }
        print("correctness: \(failures == 0 ? "every tick matched the manifest" : "\(failures) mismatches")")
        if failures > 0 { throw ExitCode(1) }
    }
}

struct BenchConfig {
    var binDir: String
    var runs: Int
    var ticks: Int
    var daemonSeconds: Double
    var fdCount = FdScanner.FdCountMethod.size
    var scanner = ScannerChoice.poll
}

struct Report {
    var header = ""
    var sections: [String] = []
    var markdown: String { ([header] + sections).joined(separator: "\n") + "\n" }

    /// Prints a section as soon as it is measured (a full run takes the better part of an hour,
    /// and a run cut short keeps what it measured) and rewrites the Markdown file so far.
    func emit(_ text: String, markdown path: String?) throws {
        print(text)
        fflush(nil)  // every stream: stdout itself is not concurrency-safe to name here
        if let path { try markdown.write(toFile: path, atomically: true, encoding: .utf8) }
    }

    /// A measured section: kept for the Markdown file and emitted at once.
    mutating func add(_ section: String, markdown path: String?) throws {
        sections.append(section)
        try emit(section, markdown: path)
    }
}

func machineDescription() -> String {
    var uts = utsname()
    uname(&uts)
    let release = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    let cpu =
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    let date = ISO8601DateFormatter().string(from: Date())
    return "machine: \(ProcessInfo.processInfo.activeProcessorCount) vCPU (\(cpu)), Linux \(release), \(date)"
}
