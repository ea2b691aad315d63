/// ProcNetTCP parses /proc/net/tcp and /proc/net/tcp6 (net/ipv4/tcp_ipv4.c `get_tcp4_sock`,
/// net/ipv6/tcp_ipv6.c `get_tcp6_sock`), the fallback when netlink sock_diag is unavailable.
public enum ProcNetTCP {
    /// Parses the whole file text; keeps only sockets whose state is in `states`.
    /// The first line is the column header and is skipped.
    public static func parse(_ text: String, family: AddressFamily, states: Set<TCPState>) throws(ProcNetTCPError) -> [SocketRecord] {
        var records = [SocketRecord]()
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if lineNumber == 1 {
                guard line.contains("local_address") else { throw .malformed(line: 1, field: "header", text: String(line)) }
                continue
            }
            if line.allSatisfy({ $0 == " " }) { continue }
            if let record = try parseLine(line, lineNumber: lineNumber, family: family, states: states) {
                records.append(record)
            }
        }
        return records
    }

    static func parseLine(_ line: Substring, lineNumber: Int, family: AddressFamily, states: Set<TCPState>) throws(ProcNetTCPError) -> SocketRecord? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        func fail(_ field: String) -> ProcNetTCPError { .malformed(line: lineNumber, field: field, text: String(line)) }
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        guard fields.count >= 10 else { throw fail("columns") }
        guard let stateNumber = UInt8(fields[3], radix: 16) else { throw fail("st") }
        guard let state = TCPState(rawValue: stateNumber) else { throw fail("st") }
        guard states.contains(state) else { return nil }
        let local = try endpoint(fields[1], family: family, orThrow: fail("local_address"))
        let remote = try endpoint(fields[2], family: family, orThrow: fail("rem_address"))
        let queues = fields[4].split(separator: ":")
        guard queues.count == 2, let tx = UInt32(queues[0], radix: 16), let rx = UInt32(queues[1], radix: 16) else {
            throw fail("tx_queue:rx_queue")
        }
        guard let uid = UInt32(fields[7]) else { throw fail("uid") }
        guard let inode = UInt64(fields[9]) else { throw fail("inode") }
        return SocketRecord(family: family, state: state, local: local, remote: remote,
                            inode: inode, uid: uid, recvQ: rx, sendQ: tx, cookie: nil)
    }

    /// `0100007F:1F90`: the address is printed as native-endian 32-bit words of the
    /// network-order bytes (so 127.0.0.1 reads `0100007F` on x86), the port as plain hex.
    static func endpoint(_ text: Substring, family: AddressFamily, orThrow error: ProcNetTCPError) throws(ProcNetTCPError) -> Endpoint {
        let parts = text.split(separator: ":")
        let words = family == .inet ? 1 : 4
        guard parts.count == 2, parts[0].count == 8 * words, let port = UInt16(parts[1], radix: 16) else { throw error }
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 * words)
        var start = parts[0].startIndex
        for _ in 0..<words {
            let end = parts[0].index(start, offsetBy: 8)
            guard let word = UInt32(parts[0][start..<end], radix: 16) else { throw error }
            Swift.withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
            start = end
        }
        guard let address = IPAddress(networkBytes: bytes) else { throw error }
        return Endpoint(address: address, port: port)
    }
}

/// ProcNetTCPError names the line and column of /proc/net/tcp that could not be read.
public enum ProcNetTCPError: Error, Equatable, CustomStringConvertible {
    case malformed(line: Int, field: String, text: String)

    public var description: String {
        switch self {
        case let .malformed(line, field, text): "line \(line): bad \(field): \(text.trimmingSpaces)"
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
