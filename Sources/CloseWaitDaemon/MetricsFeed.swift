import CloseWaitCore
import CloseWaitLinux
import Synchronization

/// MetricsFeed hands the last tick's state from the main queue to the /metrics thread: the
/// tick publishes a value copy (cheap: copy-on-write arrays), a scrape renders it at most once
/// per tick. Nothing here reads /proc or the kernel.
final class MetricsFeed: Sendable {
    struct Input: Sendable {
        var statuses: [ProcessStatus]
        var firing: [(ProcessIdentity?, AlertReason, AlertLevel)]
        var total: Int
        var health: Metrics.Health
        var maxProcesses: Int
        var diagnoses: [ProcessIdentity: Diagnosis] = [:]
        /// The tick interval: /healthz calls the state stale after three ticks without a good one.
        var interval = 5.0
    }

    let state = Mutex<(input: Input?, generation: Int, page: (generation: Int, bytes: [UInt8])?)>((nil, 0, nil))
    /// The server whose counters each page reports; set once it serves. Weak: the server
    /// holds this feed (its page source), and the daemon holds the server.
    private struct Served: Sendable { weak var server: MetricsServer? }
    private let served = Mutex(Served())

    func serve(_ server: MetricsServer) { served.withLock { $0.server = server } }

    /// - Parameter page: the input already rendered (for the textfile): a scrape serves it
    ///   as it is instead of rendering the same tick again.
    func publish(_ input: Input, page: [UInt8]? = nil) {
        state.withLock { feed in
            feed.input = input
            feed.generation += 1
            if let page { feed.page = (feed.generation, page) }
        }
    }

    /// Why /healthz answers 503, or nil while a good tick finished within the last three
    /// intervals (at least 30 s): a liveness probe's view of a wedged sampler.
    func staleness(now: Double) -> String? {
        guard let input = state.withLock({ $0.input }) else { return "no sample finished yet" }
        guard let last = input.health.lastSuccessfulTick else { return "no successful sample yet" }
        let limit = max(30, 3 * input.interval)
        let age = now - last
        return age > limit ? "the last successful sample finished \(Int(age)) s ago (more than \(Int(limit)) s)" : nil
    }

    /// The exposition of one tick, the same for a scrape and the textfile.
    static func render(_ input: Input) -> [UInt8] {
        Array(
            Metrics.render(
                statuses: input.statuses, firing: input.firing, total: input.total, health: input.health,
                version: Daemon.version, maxProcesses: input.maxProcesses, diagnoses: input.diagnoses
            ).utf8)
    }

    /// The page for the last published tick, rendered once per tick (outside the lock), with
    /// the endpoint's counters appended.
    func page() -> [UInt8] {
        let (input, generation, cached) = state.withLock { ($0.input, $0.generation, $0.page) }
        let http = served.withLock { $0.server?.counters }.map { Array(Metrics.render(http: $0).utf8) } ?? []
        if let cached, cached.generation == generation { return cached.bytes + http }
        guard let input else {
            return Array("# closewaitd has not finished its first sample yet\n".utf8) + http
        }
        let bytes = Self.render(input)
        state.withLock { if $0.generation == generation { $0.page = (generation, bytes) } }
        return bytes + http
    }
}
