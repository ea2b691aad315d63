/// TCPState mirrors the kernel's TCP state numbers (include/net/tcp_states.h), as they appear in
/// `inet_diag_msg.idiag_state` and the `st` column of /proc/net/tcp.
public enum TCPState: UInt8, Sendable, CaseIterable, Comparable {
    case established = 1
    case synSent = 2
    case synRecv = 3
    case finWait1 = 4
    case finWait2 = 5
    case timeWait = 6
    case close = 7
    case closeWait = 8
    case lastAck = 9
    case listen = 10
    case closing = 11
    case newSynRecv = 12

    /// The name `ss` uses for the state (`close-wait`), which is also what our `--state` takes.
    public var name: String {
        switch self {
        case .established: "established"
        case .synSent: "syn-sent"
        case .synRecv: "syn-recv"
        case .finWait1: "fin-wait-1"
        case .finWait2: "fin-wait-2"
        case .timeWait: "time-wait"
        case .close: "close"
        case .closeWait: "close-wait"
        case .lastAck: "last-ack"
        case .listen: "listen"
        case .closing: "closing"
        case .newSynRecv: "new-syn-recv"
        }
    }

    public init?(name: String) {
        let wanted = name.lowercased().replacingAll("_", with: "-")
        guard let match = TCPState.allCases.first(where: { $0.name == wanted }) else { return nil }
        self = match
    }

    /// The bit of this state in `inet_diag_req_v2.idiag_states`.
    public var filterBit: UInt32 { 1 << UInt32(rawValue) }

    public static func < (lhs: TCPState, rhs: TCPState) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension Set where Element == TCPState {
    /// The kernel-side state filter mask for a set of states.
    public var filterMask: UInt32 { reduce(0) { $0 | $1.filterBit } }
}
