/// IPAddress holds an IPv4 or IPv6 address, without heap storage (a sampler builds tens of
/// thousands per tick).
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    case v4(UInt8, UInt8, UInt8, UInt8)
    /// The 16 network-order bytes as two big-endian halves.
    case v6(high: UInt64, low: UInt64)

    /// Builds an address from 4 or 16 network-order bytes. IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
    /// becomes IPv4, which is how an operator thinks of the peer of a dual-stack socket.
    public init?(networkBytes b: some Collection<UInt8>) {
        let bytes = Array(b)
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.init(bytes, at: 0, count: bytes.count)
    }

    /// The same from `count` (4 or 16) bytes of `b` at `offset`; the caller checked the bounds.
    init(_ b: [UInt8], at offset: Int, count: Int) {
        if count == 4 {
            self = .v4(b[offset], b[offset + 1], b[offset + 2], b[offset + 3])
            return
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(b[offset + i]) }
        for i in 8..<16 { low = low << 8 | UInt64(b[offset + i]) }
        if high == 0 && low >> 32 == 0xffff {
            self = .v4(UInt8(low >> 24 & 0xff), UInt8(low >> 16 & 0xff), UInt8(low >> 8 & 0xff), UInt8(low & 0xff))
        } else {
            self = .v6(high: high, low: low)
        }
    }

    public var isV6: Bool { if case .v6 = self { true } else { false } }

    /// Dotted quad for IPv4, RFC 5952 text (longest zero run compressed) for IPv6.
    public var description: String {
        switch self {
        case let .v4(a, b, c, d):
            return "\(a).\(b).\(c).\(d)"
        case let .v6(high, low):
            var groups = [UInt16]()
            for shift in stride(from: 48, through: 0, by: -16) {
                groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift)))
            }
            for shift in stride(from: 48, through: 0, by: -16) {
                groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift)))
            }
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8 && groups[j] == 0 { j += 1 }
                    if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                    i = j
                } else {
                    i += 1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
        }
    }

    /// IPv4 before IPv6, then numerically; no allocation.
    private var sortKey: (UInt8, UInt64, UInt64) {
        switch self {
        case let .v4(a, b, c, d): (0, 0, UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d))
        case let .v6(high, low): (1, high, low)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        lhs.sortKey < rhs.sortKey
    }
}

/// Endpoint is an address and a TCP port.
public struct Endpoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `a.b.c.d:port` or `[v6]:port`.
    public var description: String {
        address.isV6 ? "[\(address.description)]:\(port)" : "\(address.description):\(port)"
    }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.address, lhs.port) < (rhs.address, rhs.port)
    }
}

/// AddressFamily is the socket family as the kernel numbers it.
public enum AddressFamily: UInt8, Sendable, Hashable {
    case inet = 2
    case inet6 = 10
}
