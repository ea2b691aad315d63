/// ProcNetTCP parses /proc/net/tcp and /proc/net/tcp6 (net/ipv4/tcp_ipv4.c `get_tcp4_sock`,
/// net/ipv6/tcp_ipv6.c `get_tcp6_sock`), the fallback when netlink sock_diag is unavailable
/// and the way into other network namespaces.
public enum ProcNetTCP {
    /// Parses the whole file text; keeps only sockets whose state is in `states`.
    /// The first line is the column header and is skipped.
    public static func parse(_ text: String, family: AddressFamily, states: Set<TCPState>) throws(ProcNetTCPError)
        -> [SocketRecord]
    {
        var stream = Stream(family: family, states: states)
        try stream.feed(Array(text.utf8))
        return try stream.finish()
    }

    /// Stream parses the file as it is read, chunk by chunk: only the records in the wanted
    /// states are kept, and at most one partial line is buffered. Another user can fill a
    /// network namespace with hundreds of thousands of TIME_WAIT entries (76 MB of text at
    /// 500k), so a table is never held whole.
    public struct Stream {
        public let family: AddressFamily
        public let states: Set<TCPState>
        public private(set) var records: [SocketRecord] = []
        /// Lines seen so far, the header included.
        public private(set) var lines = 0
        private var pending: [UInt8] = []
        /// No line of the kernel's format is longer (tcp6: 178 bytes with the newline).
        static let maxLine = 1024
        private var wanted: [Bool]

        public init(family: AddressFamily, states: Set<TCPState>) {
            self.family = family
            self.states = states
            wanted = (0...255).map { TCPState(rawValue: UInt8($0)).map(states.contains) ?? false }
        }

        public mutating func feed(_ chunk: some Collection<UInt8>) throws(ProcNetTCPError) {
            var start = chunk.startIndex
            var index = start
            while index != chunk.endIndex {
                if chunk[index] == 0x0a {
                    if pending.isEmpty {
                        try line(chunk[start..<index])
                    } else {
                        pending.append(contentsOf: chunk[start..<index])
                        let joined = pending
                        pending.removeAll(keepingCapacity: true)
                        try line(joined[...])
                    }
                    start = chunk.index(after: index)
                }
                index = chunk.index(after: index)
            }
            pending.append(contentsOf: chunk[start..<chunk.endIndex])
            if pending.count > Self.maxLine {
                throw .malformed(
                    line: lines + 1, field: "length", text: String(decoding: pending.prefix(80), as: UTF8.self))
            }
        }

        /// The records; a last line without its newline is parsed too.
        public mutating func finish() throws(ProcNetTCPError) -> [SocketRecord] {
            if !pending.isEmpty {
                let last = pending
                pending = []
                try line(last[...])
            }
            return records
        }

        private mutating func line(_ bytes: some Collection<UInt8>) throws(ProcNetTCPError) {
            lines += 1
            if lines == 1 {
                let text = String(decoding: bytes, as: UTF8.self)
                guard text.contains("local_address") else { throw .malformed(line: 1, field: "header", text: text) }
                return
            }
            // Most lines are in a state we do not want: decide from the bytes of the fourth
            // column alone, checking what parseLine would (ten columns, a known state).
            var field = 0, columns = 0, inField = false
            var state = 0, stateDigits = 0, stateValid = true
            for byte in bytes {
                if byte == 0x20 {
                    inField = false
                    continue
                }
                if !inField {
                    inField = true
                    field += 1
                    columns += 1
                }
                if field == 4 {
                    stateDigits += 1
                    if let digit = hexDigit(byte), stateDigits <= 2 {
                        state = state * 16 + digit
                    } else {
                        stateValid = false
                    }
                }
            }
            if columns == 0 { return }
            let known = columns >= 10 && stateValid && stateDigits > 0 && TCPState(rawValue: UInt8(state)) != nil
            if known && !wanted[state] { return }
            let text = String(decoding: bytes, as: UTF8.self)
            if let record = try parseLine(text[...], lineNumber: lines, family: family, states: states) {
                records.append(record)
            }
        }

        private func hexDigit(_ byte: UInt8) -> Int? {
            switch byte {
            case 0x30...0x39: Int(byte - 0x30)
            case 0x41...0x46: Int(byte - 0x41 + 10)
            case 0x61...0x66: Int(byte - 0x61 + 10)
            default: nil
            }
        }
    }

    static func parseLine(_ line: Substring, lineNumber: Int, family: AddressFamily, states: Set<TCPState>)
        throws(ProcNetTCPError) -> SocketRecord?
    {
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
        return SocketRecord(
            family: family, state: state, local: local, remote: remote,
            inode: inode, uid: uid, recvQ: rx, sendQ: tx, cookie: nil)
    }

    /// `0100007F:1F90`: the address is printed as native-endian 32-bit words of the
    /// network-order bytes (so 127.0.0.1 reads `0100007F` on x86), the port as plain hex.
    static func endpoint(_ text: Substring, family: AddressFamily, orThrow error: ProcNetTCPError)
        throws(ProcNetTCPError) -> Endpoint
    {
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
