/// KernelPassEntry is one record of the eBPF scanner's iterator pass (`struct cw_record` in
/// Sources/CBPFScanner/include/cw_record.h): one socket as one holder's fd sees it, or a
/// connection in a listener's accept queue (no fd yet).
public struct KernelPassEntry: Sendable, Equatable {
    public var record: SocketRecord
    /// The socket's kernel address: its identity within one pass (never shown, never kept).
    public var sock: UInt64
    public var tgid: Int32
    public var fd: Int32
    public var netns: UInt64
    /// CLOCK_MONOTONIC nanoseconds when it entered CLOSE_WAIT; 0 when not known (it did so
    /// before the programs loaded, or the kernel's map of entry times was full).
    public var enteredNs: UInt64
    /// A connection waiting in the accept queue of a listener `tgid` holds: no owner yet.
    public var fromBacklog: Bool

    public init(
        record: SocketRecord, sock: UInt64, tgid: Int32, fd: Int32, netns: UInt64, enteredNs: UInt64 = 0,
        fromBacklog: Bool = false
    ) {
        self.record = record
        self.sock = sock
        self.tgid = tgid
        self.fd = fd
        self.netns = netns
        self.enteredNs = enteredNs
        self.fromBacklog = fromBacklog
    }
}

/// KernelPassFormat decodes the iterator's output: fixed 88-byte records in host (little
/// endian) order. The bytes come from our own program, yet are checked like any input: a
/// short tail or an unknown family or state is counted, never trusted.
public enum KernelPassFormat {
    public static let recordSize = 88

    public struct Decoded: Sendable {
        public var entries: [KernelPassEntry] = []
        /// Records with a family or state we do not know, and bytes past the last whole record.
        public var malformed = 0
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        var out = Decoded()
        let count = bytes.count / recordSize
        out.entries.reserveCapacity(count)
        if bytes.count % recordSize != 0 { out.malformed += 1 }
        for index in 0..<count {
            if let entry = entry(bytes, at: index * recordSize) {
                out.entries.append(entry)
            } else {
                out.malformed += 1
            }
        }
        return out
    }

    /// The record at `base` (`recordSize` bytes the caller checked are there), or nil when its
    /// family or state is not one we know.
    static func entry(_ bytes: UnsafeRawBufferPointer, at base: Int) -> KernelPassEntry? {
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let familyRaw = u16(base + 48)
        guard let state = TCPState(rawValue: bytes[base + 54]),
            let family: AddressFamily = familyRaw == 2 ? .inet : familyRaw == 10 ? .inet6 : nil
        else { return nil }
        let width = family == .inet ? 4 : 16
        let local = IPAddress(bytes: bytes, at: base + 56, count: width)
        let remote = IPAddress(bytes: bytes, at: base + 72, count: width)
        let record = SocketRecord(
            family: family, state: state, local: Endpoint(address: local, port: u16(base + 50)),
            remote: Endpoint(address: remote, port: u16(base + 52)), inode: u64(base + 8), uid: u32(base + 36),
            recvQ: u32(base + 40), sendQ: u32(base + 44))
        return KernelPassEntry(
            record: record, sock: u64(base), tgid: Int32(truncatingIfNeeded: u32(base + 24)),
            fd: Int32(truncatingIfNeeded: u32(base + 28)), netns: UInt64(u32(base + 32)),
            enteredNs: u64(base + 16), fromBacklog: bytes[base + 55] & 1 != 0)
    }
}

extension IPAddress {
    /// From `count` (4 or 16) network-order bytes of a raw buffer; the caller checked bounds.
    /// No allocation: a pass decodes two per socket, tens of thousands a tick.
    init(bytes: UnsafeRawBufferPointer, at offset: Int, count: Int) {
        if count == 4 {
            self = .v4(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3])
            return
        }
        let high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        if high == 0 && low >> 32 == 0xffff {
            self = .v4(UInt8(low >> 24 & 0xff), UInt8(low >> 16 & 0xff), UInt8(low >> 8 & 0xff), UInt8(low & 0xff))
        } else {
            self = .v6(high: high, low: low)
        }
    }
}

/// KernelPass is one iterator pass joined into what the poll path's sampler and owner index
/// give together: each socket once, its holders, its namespace and when it entered CLOSE_WAIT.
public struct KernelPass: Sendable {
    public var records: [SocketRecord] = []
    public var owners = OwnerMap()
    /// Socket inode -> network namespace, for sockets of namespaces other than `ownNetns`.
    public var foreign: [UInt64: UInt64] = [:]
    /// Socket inode -> monotonic seconds it entered CLOSE_WAIT (the kernel's time).
    public var enteredAt: [UInt64: Double] = [:]
    /// The processes holding the sockets, ascending.
    public var holders: [Int32] = []
    /// Network namespaces other than `ownNetns` that sockets with an inode live in (the
    /// distinct values of `foreign`).
    public var foreignNamespaces = 0
    public var malformed = 0
    /// Sockets of the daemon's own namespace that its socket table lists and no fd leads to
    /// (a socket passed over a unix socket and not received yet, a kernel socket): added by
    /// `addUnowned`, unowned like the poll path shows them.
    public var unseen = 0

    public init() {}

    /// A socket of a socket table the pass may not have seen: its inode, or for a connection
    /// without one (a backlog) its addresses.
    public struct TableKey: Hashable, Sendable {
        var inode: UInt64
        var local: Endpoint?
        var remote: Endpoint?
        public init(_ record: SocketRecord) {
            inode = record.inode
            if record.inode == 0 {
                local = record.local
                remote = record.remote
            }
        }
    }

    /// The sockets of `table` (the own namespace's, from netlink) the pass did not see. The
    /// iterator only finds sockets through files, and a socket in flight in a unix socket's
    /// queue has none: the poll path shows it unowned, so must this one.
    public func unseen(in table: [SocketRecord]) -> [SocketRecord] {
        // Owned sockets are known by the owner map; only the few others need a set.
        var inodes = Set<UInt64>()
        var backlog = Set<TableKey>()
        for record in records where !owners.contains(record.inode) {
            if record.inode != 0 { inodes.insert(record.inode) } else { backlog.insert(TableKey(record)) }
        }
        return table.filter {
            $0.inode != 0
                ? !owners.contains($0.inode) && !inodes.contains($0.inode) : !backlog.contains(TableKey($0))
        }
    }

    /// Adds sockets no file leads to (`unseen(in:)`), unowned.
    public mutating func addUnowned(_ extra: [SocketRecord]) {
        for record in extra {
            var kept = record
            kept.cookie = nil
            records.append(kept)
        }
        unseen += extra.count
    }

    /// Builds a pass from the iterator's bytes as they are read, in chunks of any size (a
    /// record may be split between two reads): the raw bytes of a pass are never held whole.
    public struct Builder {
        var pass = KernelPass()
        let ownNetns: UInt64
        let onlyOwn: Bool
        var seen = Set<UInt64>()
        var holders = Set<Int32>()
        var foreignNetns = Set<UInt64>()
        var tail: [UInt8] = []

        /// - Parameter onlyOwn: keep only the sockets of `ownNetns` (`daemon.namespaces = "own"`).
        /// - Parameter capacity: sockets expected (the last pass's), reserved at once rather
        ///   than grown by doubling.
        public init(ownNetns: UInt64, onlyOwn: Bool = false, capacity: Int = 0) {
            self.ownNetns = ownNetns
            self.onlyOwn = onlyOwn
            pass.records.reserveCapacity(capacity)
            pass.owners = OwnerMap(minimumCapacity: capacity)
        }

        public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
            var start = 0
            if !tail.isEmpty {
                let need = KernelPassFormat.recordSize - tail.count
                tail += bytes.prefix(need)
                start = min(need, bytes.count)
                guard tail.count == KernelPassFormat.recordSize else { return }
                let whole = tail
                tail = []
                whole.withUnsafeBytes { record($0, at: 0) }
            }
            while start + KernelPassFormat.recordSize <= bytes.count {
                record(bytes, at: start)
                start += KernelPassFormat.recordSize
            }
            if start < bytes.count { tail = Array(bytes[start...]) }
        }

        mutating func record(_ bytes: UnsafeRawBufferPointer, at base: Int) {
            if let entry = KernelPassFormat.entry(bytes, at: base) { add(entry) } else { pass.malformed += 1 }
        }

        mutating func add(_ entry: KernelPassEntry) {
            if onlyOwn && entry.netns != ownNetns { return }
            let inode = entry.record.inode
            // One record per socket however many fds (forks, passed fds, dup) lead to it, and a
            // backlog connection once however many processes share its listener. Owned sockets
            // are known by the owner map (no set of 50k addresses); the others by address.
            if !entry.fromBacklog && inode != 0 && entry.tgid > 0 {
                let known = pass.owners.contains(inode) || seen.contains(entry.sock)
                pass.owners.add(entry.tgid, for: inode)
                holders.insert(entry.tgid)
                if known { return }
            } else {
                guard seen.insert(entry.sock).inserted else { return }
                if inode != 0 && pass.owners.contains(inode) { return }
            }
            pass.records.append(entry.record)
            if inode != 0 {
                if entry.netns != ownNetns {
                    pass.foreign[inode] = entry.netns
                    foreignNetns.insert(entry.netns)
                }
                if entry.enteredNs > 0 { pass.enteredAt[inode] = Double(entry.enteredNs) / 1e9 }
            }
        }

        public mutating func finish() -> KernelPass {
            if !tail.isEmpty { pass.malformed += 1 }
            pass.holders = holders.sorted()
            pass.foreignNamespaces = foreignNetns.count
            return pass
        }
    }
}

/// PassSchedule decides, each tick, whether the eBPF scanner runs an iterator pass or reuses
/// the last one: a pass when a socket entered or left CLOSE_WAIT since the last (the kernel's
/// counters moved), when a holder went away or changed, and every `auditInterval` (what moves
/// without a state change: a fork, a passed fd, a close of a shared socket's other fd).
public struct PassSchedule: Sendable, Equatable {
    public enum Reason: String, Sendable {
        case first, changed, audit, holderGone = "holder-gone", retry
    }
    /// Seconds between audit passes (`daemon.full_scan_interval`); 0: a pass every tick.
    public var auditInterval: Double
    private var generation: UInt64?
    private var lastPass: Double?
    private var dirty = false

    public init(auditInterval: Double) {
        self.auditInterval = auditInterval
    }

    /// Whether a pass is due at `now` with the kernel's change counter at `generation`
    /// (entered + left), and why; nil: the last pass still stands.
    public func due(now: Double, generation: UInt64) -> Reason? {
        guard let last = self.generation, let passedAt = lastPass else { return .first }
        if dirty { return .retry }
        if generation != last { return .changed }
        if auditInterval <= 0 || now - passedAt >= auditInterval { return .audit }
        return nil
    }

    /// A pass ran at `now`, with the counter read just before it (a change during the pass
    /// makes the next tick pass again).
    public mutating func passed(now: Double, generation: UInt64) {
        self.generation = generation
        dirty = false
        // Every pass sees everything: the audit interval counts from the last one.
        lastPass = now
    }

    /// The next tick must pass whatever the counters say (a pass failed, or the holders moved).
    public mutating func invalidate() { dirty = true }

    /// Forgets everything: the next tick is a first pass (the programs were loaded again).
    public mutating func reset() {
        generation = nil
        lastPass = nil
        dirty = false
    }
}
