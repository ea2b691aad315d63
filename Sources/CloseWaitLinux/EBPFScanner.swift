import CBPFScanner
import CloseWaitCore
import Glibc

/// EBPFScanner holds the loaded programs of Sources/CBPFScanner/bpf/closewait.bpf.c: an
/// iterator over every process's open files (one pass gives every CLOSE_WAIT socket of every
/// namespace with all its holders) and a tracepoint counting sockets entering and leaving
/// CLOSE_WAIT (read from shared memory, no syscall). `open` says why it cannot load.
public final class EBPFScanner {
    private var handles: cw_handles
    private let counterView: UnsafePointer<cw_counters>
    private var chunk: UnsafeMutableRawBufferPointer
    /// `tp_btf` or `raw_tp`: how the state-change counter is attached.
    public let attach: String
    /// The network namespace the daemon runs in.
    public let ownNetns: UInt64
    /// Passes left before the iterator is removed (CLOSEWAITD_BPF_FAULT=pass-after:N).
    private var passesLeft: Int?

    /// Why the eBPF scanner cannot run here, in one sentence.
    public struct Unavailable: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// What the tests may ask for (CLOSEWAITD_BPF_FAULT): `verifier` loads a program the
    /// verifier must refuse; `pass-after:N` removes the iterator after N passes.
    public enum Fault: Sendable, Equatable {
        case verifier
        case passAfter(Int)

        public static var fromEnvironment: Fault? {
            guard let raw = getenv("CLOSEWAITD_BPF_FAULT").map({ String(cString: $0) }) else { return nil }
            if raw == "verifier" { return .verifier }
            if raw.hasPrefix("pass-after:"), let n = Int(raw.dropFirst("pass-after:".count)) { return .passAfter(n) }
            return nil
        }
    }

    /// The `closewaitd` executable that loads the programs in a process of its own (libbpf's
    /// relocation against the kernel's BTF peaks at ~12 MiB, which the daemon then never
    /// holds); nil: load here (a process that is not `closewaitd`: tests, the benchmark,
    /// unless it names one).
    nonisolated(unsafe) public static var helper: String? = {
        guard let exe = try? ProcFS().readLink("self/exe"),
            String(decoding: exe, as: UTF8.self).hasSuffix("/closewaitd")
        else { return nil }
        return "/proc/self/exe"
    }()

    /// Checks what the kernel and our privileges must offer, then loads and attaches.
    /// - Parameter states: the TCP states passes report (CLOSE_WAIT for the daemon).
    public static func open(states: Set<TCPState>, fault: Fault? = Fault.fromEnvironment) throws(Unavailable)
        -> EBPFScanner
    {
        if let problem = precheck(states: states) { throw Unavailable(description: problem) }
        var mask: UInt32 = 0
        for state in states { mask |= 1 << UInt32(state.rawValue) }
        var log = [CChar](repeating: 0, count: 1 << 16)
        var error: Int32 = 0
        var stage: Int32 = 0
        var handles = cw_handles()
        let reject = fault == .verifier
        let rc: Int32
        if let helper {
            var arguments = ["closewaitd", "bpf-loader", "--states", String(mask)] + (reject ? ["--reject"] : [])
            let argv = arguments.indices.map { strdup(arguments[$0]) } + [nil]
            defer { for arg in argv { free(arg) } }
            arguments = []
            rc = log.withUnsafeMutableBufferPointer { buffer in
                argv.withUnsafeBufferPointer { args in
                    cw_load_in_helper(
                        helper, UnsafePointer(args.baseAddress!), 30_000, &handles, buffer.baseAddress, buffer.count,
                        &error, &stage)
                }
            }
        } else {
            rc = log.withUnsafeMutableBufferPointer {
                cw_load_here(mask, reject ? 1 : 0, &handles, $0.baseAddress, $0.count, &error, &stage)
            }
        }
        let text = String(decoding: log.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard rc == 0 else {
            if stage == 0 {
                let why = String(cString: strerror(-error))
                throw Unavailable(description: "the loader process (closewaitd bpf-loader) failed: \(why)")
            }
            throw Unavailable(description: describe(error: -error, stage: stage, log: text))
        }
        guard let view = cw_counters_map(handles.counters_map) else {
            let why = String(cString: strerror(errno))
            for fd in [handles.iter_link, handles.state_link, handles.counters_map] { close(fd) }
            throw Unavailable(description: "the kernel's counters could not be mapped (\(why))")
        }
        return EBPFScanner(handles: handles, counters: view, fault: fault)
    }

    private init(handles: cw_handles, counters: UnsafePointer<cw_counters>, fault: Fault?) {
        self.handles = handles
        counterView = counters
        attach = handles.attach == Int32(CW_ATTACH_RAW_TP.rawValue) ? "raw_tp" : "tp_btf"
        ownNetns = NetNamespaces().own ?? 0
        chunk = .allocate(byteCount: 256 << 10, alignment: 8)
        if case let .passAfter(n) = fault { passesLeft = n }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: counterView), Int(sysconf(Int32(_SC_PAGESIZE))))
        for fd in [handles.iter_link, handles.state_link, handles.counters_map] where fd >= 0 { close(fd) }
        chunk.deallocate()
    }

    /// The kernel's counters now (shared memory: no system call).
    public var counters: (entered: UInt64, left: UInt64, sinceFull: UInt64, backlogCut: UInt64) {
        let c = counterView.pointee
        return (c.entered, c.left, c.since_full, c.backlog_cut)
    }

    /// The set of sockets in CLOSE_WAIT now, as a number: the count in CLOSE_WAIT since load
    /// (entered - left) and the XOR of their hashes. A pass is out of date when this moved; a
    /// socket that entered and left between two ticks (a server whose client closed first, a
    /// /metrics scrape) moves neither, so a busy host still reuses its passes.
    public var generation: UInt64 {
        let c = counterView.pointee
        return c.set_hash ^ (c.entered &- c.left) &* 0x9E37_79B9_7F4A_7C15
    }

    /// One iterator pass over every process's open files, joined as it is read (256 KiB at a
    /// time: the raw records of a pass are never held whole).
    public func pass(onlyOwn: Bool) throws(Errno) -> KernelPass {
        if let left = passesLeft {
            if left == 0 && handles.iter_link >= 0 {
                close(handles.iter_link)
                handles.iter_link = -1
            }
            passesLeft = max(0, left - 1)
        }
        guard handles.iter_link >= 0 else { throw Errno(ENOLINK, call: "the eBPF iterator pass") }
        let fd = cw_iter_open(handles.iter_link)
        guard fd >= 0 else { throw Errno(-fd, call: "the eBPF iterator pass") }
        defer { close(fd) }
        var builder = KernelPass.Builder(ownNetns: ownNetns, onlyOwn: onlyOwn, capacity: lastCount + lastCount / 8)
        while true {
            let n = read(fd, chunk.baseAddress, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                // A million objects visited with nothing written: the pass goes on from there.
                if errno == EAGAIN { continue }
                throw Errno(errno, call: "the eBPF iterator pass")
            }
            if n == 0 { break }
            builder.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        }
        let pass = builder.finish()
        lastCount = pass.records.count
        return pass
    }

    /// Sockets the last pass found (the next one reserves room for them at once).
    private var lastCount = 0

    /// Linux 5.11 (bpf_sock_from_file), kernel BTF, and CAP_BPF + CAP_PERFMON (or
    /// CAP_SYS_ADMIN); TIME_WAIT and SYN_RECV have no file and are not seen by the iterator.
    static func precheck(states: Set<TCPState>) -> String? {
        let unseen = states.filter { [.timeWait, .synRecv, .newSynRecv].contains($0) }
        if !unseen.isEmpty {
            return
                "the iterator sees sockets through their files; \(unseen.map(\.name).sorted().joined(separator: ", ")) have none"
        }
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        if parts.count == 2, (parts[0], parts[1]) < (5, 11) {
            return "Linux \(release) is older than 5.11 (the iterator needs bpf_sock_from_file)"
        }
        if access("/sys/kernel/btf/vmlinux", R_OK) != 0 {
            return "the kernel has no BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)"
        }
        let caps = (try? ProcFS().read("self/status", limit: 1 << 16)).flatMap(ProcPidStatus.effectiveCapabilities) ?? 0
        let admin = caps & (1 << 21) != 0
        var missing = [String]()
        if caps & (1 << 39) == 0 && !admin { missing.append("CAP_BPF") }
        if caps & (1 << 38) == 0 && !admin { missing.append("CAP_PERFMON") }
        if !missing.isEmpty {
            return "missing \(missing.joined(separator: " and ")) (the service grants them with the eBPF drop-in)"
        }
        return nil
    }

    static func describe(error: Int32, stage: Int32, log: String) -> String {
        let code = String(cString: strerror(error))
        if let reason = BPFLoadLog.reason(log) {
            return reason + (stage == Int32(CW_STAGE_LOAD.rawValue) ? "" : " (\(code))")
        }
        let lockdown = (try? ProcFS(root: "/sys/kernel/security").read("lockdown", limit: 256)).map {
            String(decoding: $0, as: UTF8.self)
        }
        let locked = lockdown.map { $0.contains("[confidentiality]") || $0.contains("[integrity]") } ?? false
        switch stage {
        case Int32(CW_STAGE_OPEN.rawValue):
            return "the embedded programs could not be opened (\(code))"
        case Int32(CW_STAGE_ATTACH.rawValue):
            return "attaching the iterator or inet_sock_set_state failed (\(code))"
        default:
            if error == EPERM || error == EACCES {
                return "the kernel refused to load the programs (\(code)): "
                    + (locked ? "kernel lockdown is on" : "a seccomp filter or a security module denies bpf()")
            }
            return "loading the programs failed (\(code))"
        }
    }
}
