import CBPFScanner
import CloseWaitCore
import Glibc

/// EBPFScanner holds the loaded programs of Sources/CBPFScanner/bpf/closewait.bpf.c: an
/// iterator over every process's open files (one pass gives every CLOSE_WAIT socket of every
/// namespace with all its holders) and a tracepoint counting sockets entering and leaving
/// CLOSE_WAIT (read from shared memory, no syscall). `open` says why it cannot load.
public final class EBPFScanner {
    private let handle: OpaquePointer
    private var buffer: UnsafeMutablePointer<UInt8>?
    private var capacity = 0
    /// `tp_btf` or `raw_tp`: how the state-change counter is attached.
    public let attach: String
    /// The network namespace the daemon runs in.
    public let ownNetns: UInt64
    /// Reads resumed after the kernel's per-read limit of a million objects (-EAGAIN).
    public private(set) var resumedReads = 0

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
        let opened = log.withUnsafeMutableBufferPointer {
            cw_scanner_open(mask, fault == .verifier ? 1 : 0, $0.baseAddress, $0.count, &error, &stage)
        }
        guard let opened else {
            let text = String(decoding: log.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw Unavailable(description: describe(error: -error, stage: stage, log: text))
        }
        return EBPFScanner(handle: opened, fault: fault)
    }

    private init(handle: OpaquePointer, fault: Fault?) {
        self.handle = handle
        attach = cw_scanner_attach_kind(handle) == Int32(CW_ATTACH_RAW_TP.rawValue) ? "raw_tp" : "tp_btf"
        ownNetns = NetNamespaces().own ?? 0
        if case let .passAfter(n) = fault { cw_scanner_fail_after(handle, n) }
    }

    deinit {
        cw_scanner_close(handle)
        free(buffer)
    }

    /// The kernel's counters now.
    public var counters: (entered: UInt64, left: UInt64, sinceFull: UInt64, backlogCut: UInt64) {
        let c = cw_scanner_counters(handle)!
        return (c.pointee.entered, c.pointee.left, c.pointee.since_full, c.pointee.backlog_cut)
    }

    /// Entries and exits so far: a pass is out of date when this moved.
    public var generation: UInt64 {
        let c = counters
        return c.entered &+ c.left
    }

    /// One iterator pass over every process's open files.
    public func pass() throws(Errno) -> KernelPassFormat.Decoded {
        var again = 0
        let read = cw_scanner_pass(handle, &buffer, &capacity, &again)
        resumedReads += again
        if read < 0 { throw Errno(Int32(-read), call: "the eBPF iterator pass") }
        return KernelPassFormat.decode(UnsafeRawBufferPointer(start: buffer, count: read))
    }

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
        let caps = effectiveCapabilities()
        let admin = caps & (1 << 21) != 0
        var missing = [String]()
        if caps & (1 << 39) == 0 && !admin { missing.append("CAP_BPF") }
        if caps & (1 << 38) == 0 && !admin { missing.append("CAP_PERFMON") }
        if !missing.isEmpty {
            return "missing \(missing.joined(separator: " and ")) (the service grants them with the eBPF drop-in)"
        }
        return nil
    }

    /// CapEff of this process (/proc/self/status).
    static func effectiveCapabilities() -> UInt64 {
        guard let text = try? ProcFS().read("self/status", limit: 1 << 16) else { return 0 }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingSpacesAndTabs, radix: 16) ?? 0
        }
        return 0
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

extension Substring {
    fileprivate var trimmingSpacesAndTabs: Substring {
        drop(while: { $0 == " " || $0 == "\t" })
    }
}
