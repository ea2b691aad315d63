/// IPAddress holds an IPv4 or IPv6 address in network byte order.
public enum IPAddress: Hashable, Sendable, Comparable {
    case v4(UInt8, UInt8, UInt8, UInt8)
    case v6([UInt8])  // 16 bytes

    /// Builds an address from 4 or 16 network-order bytes. IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
    /// becomes IPv4, which is how an operator thinks of the peer of a dual-stack socket.
    public init?(networkBytes b: some Collection<UInt8>) {
        let bytes = Array(b)
        switch bytes.count {
        case 4:
            self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16:
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                self = .v4(bytes[12], bytes[13], bytes[14], bytes[15])
            } else {
                self = .v6(bytes)
            }
        default:
            return nil
        }
    }

    public var isV6: Bool { if case .v6 = self { true } else { false } }

    /// Dotted quad for IPv4, RFC 5952 text (longest zero run compressed) for IPv6.
    public var description: String {
        switch self {
        case let .v4(a, b, c, d):
            return "\(a).\(b).\(c).\(d)"
        case let .v6(bytes):
            var groups = [UInt16]()
            for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])) }
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8 && groups[j] == 0 { j += 1 }
                    if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                    i = j
                } else { i += 1 }
            }
            func hex(_ range: Range<Int>) -> String {
                range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
        }
    }

    private var sortKey: [UInt8] {
        switch self {
        case let .v4(a, b, c, d): [0, a, b, c, d]
        case let .v6(bytes): [1] + bytes
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        lhs.sortKey.lexicographicallyPrecedes(rhs.sortKey)
    }
}

/// Endpoint is an address and a TCP port.
public struct Endpoint: Hashable, Sendable, Comparable {
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
