import CloseWaitCore
import CloseWaitDaemon
import CloseWaitLinux
import Foundation
import WorkloadSupport
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// NamespaceRun measures sampling many network namespaces against what an operator would
/// script: `for each netns: nsenter -t PID -n ss -tnH state close-wait` (plus `ss -tnp` on the
/// host to name the owners). Each namespace is an `unshare --net` running the workload: first
/// 50 ESTABLISHED and no CLOSE_WAIT sockets each (an idle host with containers), then 20
/// CLOSE_WAIT each (a plateau). The sampler ticks in-process, as in BenchRun.
struct NamespaceRun {
    let count: Int
    let config: BenchConfig
    var scanners: [ScannerChoice] = [.poll]
    static let unshare = ["/usr/bin/unshare", "--net", "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]

    var ssPath: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") ? "/usr/bin/ss" : "/bin/ss" }

    func log(_ message: String) { FileHandle.standardError.write(Data("bench: \(message)\n".utf8)) }
    func ms(_ seconds: Double) -> String {
        seconds < 0.01 ? String(format: "%.2f ms", seconds * 1000) : String(format: "%.1f ms", seconds * 1000)
    }

    /// Starts `count` namespaced workloads with `arguments`.
    func start(_ arguments: [String]) throws -> [Workload] {
        var started = [Workload]()
        do {
            for _ in 0..<count {
                started.append(try Workload(arguments, timeout: 60, duration: 900, launcher: Self.unshare))
            }
        } catch {
            for w in started { w.stop() }
            throw error
        }
        return started
    }

    /// One pass of the operator's loop over the namespaces (whole processes, sequential).
    func loop(_ members: [Int32], withHost: Bool) throws -> Double {
        let start = monotonicNow()
        for pid in members {
            let r = try BenchRun.spawnAndWaitCPU(
                "/usr/bin/nsenter", ["-t", String(pid), "-n", "ss", "-tnH", "state", "close-wait"])
            guard r.status == 0 else { throw TimedOut(description: "nsenter -t \(pid) -n ss exited \(r.status)") }
        }
        if withHost { _ = try BenchRun.spawnAndWaitCPU(ssPath, ["-tnpH", "state", "close-wait"]) }
        return monotonicNow() - start
    }

    /// The daemon's ticks (its pipeline, every namespace sampled), after a first one that discovers
    /// the namespaces and walks /proc fully.
    func ticks(expectTotal: Int, scanner: ScannerChoice, busy: Bool = false) throws -> (Timings, Int) {
        var pipeline = TickPipeline.bench(
            fdCount: config.fdCount, scanner: scanner, fullScanInterval: 300, busy: busy)
        // The daemon reads other namespaces within a budget per tick (a fifth of the interval),
        // in turn: the first ticks may not reach every one. Timed once it has (at most 20 ticks).
        var first = try pipeline.run(now: monotonicNow())
        for _ in 0..<20 where first.total < expectTotal { first = try pipeline.run(now: monotonicNow()) }
        var t = Timings()
        for _ in 0..<config.ticks {
            let start = monotonicNow()
            _ = try pipeline.run(now: start)
            t.samples.append(monotonicNow() - start)
        }
        return (t, first.total)
    }

    func run() throws -> String {
        var text = "\n### \(count) network namespaces (`unshare --net`), namespaces = \"all\"\n\n"
        text += "| measure | median | min–max | ratio to the loop | goal |\n|---|---|---|---|---|\n"
        log("namespaces: \(count) × 50 ESTABLISHED, no CLOSE_WAIT")
        do {
            let idle = try start(["--processes", "1", "--v4", "0", "--established", "50"])
            defer { for w in idle { w.stop() } }
            let members = idle.map { $0.holders[0] }
            var loops = Timings()
            for _ in 0..<max(3, config.runs / 2) { loops.samples.append(try loop(members, withHost: false)) }
            text +=
                "| operator's loop: nsenter + `ss -tnH state close-wait` per namespace (idle) | \(ms(loops.median)) | \(ms(loops.min))–\(ms(loops.max)) | 1.000× | |\n"
            for scanner in scanners {
                let (tick, total) = try ticks(expectTotal: 0, scanner: scanner)
                text += String(
                    format:
                        "| %@: idle tick, every namespace sampled (%d CLOSE_WAIT) | %@ | %@–%@ | %.3f× | ≤ 0.05× |\n",
                    scanner.rawValue, total, ms(tick.median), ms(tick.min), ms(tick.max), tick.median / loops.median)
            }
        }
        log("namespaces: \(count) × 20 CLOSE_WAIT")
        do {
            let plateau = try start(["--processes", "1", "--v4", "20"])
            defer { for w in plateau { w.stop() } }
            let members = plateau.map { $0.holders[0] }
            var loops = Timings()
            for _ in 0..<max(3, config.runs / 2) { loops.samples.append(try loop(members, withHost: true)) }
            text +=
                "| operator's loop over the namespaces plus `ss -tnp state close-wait` on the host (plateau) | \(ms(loops.median)) | \(ms(loops.min))–\(ms(loops.max)) | 1.000× | |\n"
            for scanner in scanners {
                let (tick, total) = try ticks(expectTotal: count * 20, scanner: scanner)
                let (busy, _) = try ticks(expectTotal: count * 20, scanner: scanner, busy: true)
                text += String(
                    format:
                        "| %@: plateau tick, every namespace sampled and attributed (%d CLOSE_WAIT) | %@ | %@–%@ | %.3f× | ≤ 0.1× |\n",
                    scanner.rawValue, total, ms(tick.median), ms(tick.min), ms(tick.max), tick.median / loops.median)
                text += String(
                    format:
                        "| %@: the same, %@ | %@ | %@–%@ | %.3f× | %@ |\n", scanner.rawValue,
                    scanner == .ebpf
                        ? "a pass every tick (as when sockets change state all the time)"
                        : "every namespace's table read again (as when each has traffic)",
                    ms(busy.median), ms(busy.min), ms(busy.max), busy.median / loops.median,
                    scanner == .ebpf ? "≤ 0.05× (500)" : "")
                if total < count * 20 {
                    text += "\nwarning: \(scanner.rawValue): \(total) CLOSE_WAIT sampled, \(count * 20) expected\n"
                }
            }
        }
        return text
    }
}
