/// ProcNetSnmp reads the TCP counters of /proc/<pid>/net/snmp (one network namespace's MIB,
/// IPv4 and IPv6 together): the `Tcp:` values line after its `Tcp:` header line.
///
/// A socket enters CLOSE_WAIT only when a FIN arrives (InSegs), and leaves it only by sending
/// a FIN or RST or receiving an RST (OutSegs, OutRsts, InSegs): if the whole line is unchanged
/// since the last read, so is the namespace's set of CLOSE_WAIT sockets, and its TCP table
/// (a walk of the kernel's whole socket hash for each read) need not be read again.
public enum ProcNetSnmp {
    /// The bytes of the TCP values line, or nil if the file has none.
    public static func tcpCounters(_ bytes: [UInt8]) -> [UInt8]? {
        var sawHeader = false
        for line in bytes.split(separator: 0x0a) {
            guard line.starts(with: Array("Tcp:".utf8)) else { continue }
            if sawHeader { return Array(line) }
            sawHeader = true
        }
        return nil
    }
}
