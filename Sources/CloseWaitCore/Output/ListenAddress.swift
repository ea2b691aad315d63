/// ListenAddress is `[metrics] listen`: `IPv4:PORT` or `[IPv6]:PORT`, numeric only (no
/// names: resolving one at start would make the daemon depend on DNS). Parsed here, without
/// libc, so the config check rejects a bad one with its key and line.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), network order.
    public var address: [UInt8]
    public var port: UInt16

    /// The port the shipped socket unit listens on (README, Fleet): in the 9100–9999 range
    /// Prometheus exporters use.
    public static let defaultPort: UInt16 = 9838

    public var isIPv6: Bool { address.count == 16 }

    public var description: String {
        if !isIPv6 { return address.map(String.init).joined(separator: ".") + ":\(port)" }
        let high = address[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = address[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return "[" + IPAddress.v6(high: high, low: low).description + "]:\(port)"
    }

    /// An address of 4 or 16 network-order bytes (as getsockname reports it).
    public init(address: [UInt8], port: UInt16) {
        precondition(address.count == 4 || address.count == 16)
        self.address = address
        self.port = port
    }

    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard let colon = bytes.lastIndex(of: 0x3a) else { return nil }
        let portText = bytes[(colon + 1)...]
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ (0x30...0x39).contains($0) }),
            let port = Int(String(decoding: portText, as: UTF8.self)), (1...65535).contains(port)
        else { return nil }
        let host = bytes[..<colon]
        if host.first == 0x5b {
            guard host.count > 2, host.last == 0x5d,
                let address = Self.parseIPv6(Array(host.dropFirst().dropLast()))
            else { return nil }
            self.address = address
        } else {
            guard let address = Self.parseIPv4(Array(host)) else { return nil }
            self.address = address
        }
        self.port = UInt16(port)
    }

    /// Four decimal octets without leading zeros (`010` is octal to some tools: refused).
    static func parseIPv4(_ text: [UInt8]) -> [UInt8]? {
        let parts = text.split(separator: 0x2e, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out = [UInt8]()
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ (0x30...0x39).contains($0) }),
                part.count == 1 || part.first != 0x30,
                let value = Int(String(decoding: part, as: UTF8.self)), value <= 255
            else { return nil }
            out.append(UInt8(value))
        }
        return out
    }

    /// RFC 4291 text: up to eight groups of 1–4 hex digits, one `::`, an IPv4 tail allowed.
    static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        func groups(_ part: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result = [UInt16]()
            let pieces = part.split(separator: 0x3a, omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if allowIPv4Tail, i == pieces.count - 1, piece.contains(0x2e) {
                    guard let v4 = parseIPv4(Array(piece)) else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(piece.count),
                    let value = UInt16(String(decoding: piece, as: UTF8.self), radix: 16),
                    piece.allSatisfy({
                        (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0)
                    })
                else { return nil }
                result.append(value)
            }
            return result
        }
        var words: [UInt16]
        var split: Int?
        for i in 0..<max(0, text.count - 1) where text[i] == 0x3a && text[i + 1] == 0x3a {
            if split != nil { return nil }
            split = i
        }
        if let split {
            guard let head = groups(text[..<split], allowIPv4Tail: false),
                let tail = groups(text[(split + 2)...], allowIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(text[...], allowIPv4Tail: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}
