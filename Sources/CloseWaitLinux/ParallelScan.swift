import CLinuxShim
import Glibc

/// ParallelScan runs per-process /proc work on several threads: reading fd links is
/// kernel-bound and splits cleanly by process.
enum ParallelScan {
    /// One result slot per chunk, each written by exactly one thread and read after all have
    /// finished: separate memory, no shared Array (whose copy-on-write check would itself be
    /// a data race).
    final class Slots<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T>
        init(count: Int, empty: T) {
            buffer = .allocate(capacity: count)
            buffer.initialize(repeating: empty)
        }
        func store(_ value: T, at index: Int) { (buffer.baseAddress! + index).pointee = value }
        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }
    }

    /// `body` applied to every item, in order, on up to `workers` threads; one thread when
    /// there is less than `minimumPerWorker` work per thread (a thread costs more than that).
    static func map<T: Sendable, R>(
        _ items: [T], weight: (T) -> Int = { _ in 1 }, minimumPerWorker: Int,
        workers: Int = ProcessInfoLite.activeProcessors,
        _ body: @Sendable (T) -> R
    ) -> [R] {
        let total = items.reduce(0) { $0 + weight($1) }
        let chunks = max(1, min(workers, items.count, total / max(1, minimumPerWorker)))
        if chunks == 1 { return items.map(body) }
        // Split into chunks of about equal weight.
        var bounds = [0]
        var acc = 0
        for (i, item) in items.enumerated() {
            acc += weight(item)
            if acc >= total * bounds.count / chunks && bounds.count < chunks { bounds.append(i + 1) }
        }
        bounds.append(items.count)
        let edges = bounds
        let slots = Slots<[R]>(count: edges.count - 1, empty: [])
        // Threads.run joins every thread before it returns, so `body` does not escape.
        withoutActuallyEscaping(body) { body in
            Threads.run(count: edges.count - 1) { chunk in
                slots.store(items[edges[chunk]..<edges[chunk + 1]].map(body), at: chunk)
            }
        }
        return Array(slots.buffer.joined())
    }
}

/// Threads runs work on threads of its own, not libdispatch's pool: when thread creation
/// fails (a unit's TasksMax, a cgroup's pids.max), libdispatch retries forever and the tick
/// never ends; here the work then simply runs on the calling thread.
enum Threads {
    final class Job: @unchecked Sendable {
        let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }

    /// Starts `work` on a new thread; nil if the thread could not be made (`work` not run).
    static func start(_ work: @escaping @Sendable () -> Void) -> pthread_t? {
        let job = Unmanaged.passRetained(Job(work))
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { context in
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                job.work()
                return nil
            }, job.toOpaque())
        if rc != 0 { job.release(); return nil }
        return thread
    }

    /// Calls `body(i)` for every i in 0..<count, on up to `count` threads (this one included),
    /// and returns when all are done.
    static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var started = [pthread_t]()
        var inline = [0]
        for i in 1..<max(1, count) {
            if let thread = start({ body(i) }) { started.append(thread) } else { inline.append(i) }
        }
        for i in inline where i < count { body(i) }
        for thread in started { pthread_join(thread, nil) }
    }
}

/// How many threads the /proc walk may use.
enum ProcessInfoLite {
    /// The unit's TasksMax=16 must hold these workers, the main thread, and Dispatch's own
    /// manager and timer threads with room to spare: a 64-CPU host must not fail thread
    /// creation inside libdispatch.
    static let workerCap = 6

    /// min(CPUs in this process's affinity mask, `workerCap`), at least 1.
    static let activeProcessors: Int = {
        let count = cw_affinity_cpu_count()
        let allowed = count > 0 ? Int(count) : Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, min(workerCap, allowed))
    }()
}
