/// ProcPidStatus reads the real uid from /proc/<pid>/status (`Uid:\treal\teffective\tsaved\tfs`),
/// the pid inside a nested pid namespace and the effective capabilities.
/// The file is read as bytes: its `Name:` line holds the process's own comm.
public enum ProcPidStatus {
    public static func parseUID(_ bytes: some Collection<UInt8>) throws(ProcFileError) -> UInt32 {
        var number = 0
        for line in Array(bytes).asciiLines {
            number += 1
            guard line.hasASCIIPrefix("Uid:") else { continue }
            let values = line.dropFirst(4).split(whereSeparator: { $0 == 0x09 || $0 == 0x20 })
            guard let first = values.first, let uid = ASCIIDecimal.parse(first, as: UInt32.self) else {
                throw .malformed(line: number, key: "Uid", detail: "not a number")
            }
            return uid
        }
        throw .malformed(line: number, key: "Uid", detail: "no Uid line")
    }

    public static func parseUID(_ text: String) throws(ProcFileError) -> UInt32 {
        try parseUID(Array(text.utf8))
    }

    /// The pid inside the process's innermost pid namespace (the last `NSpid:` value), when it
    /// lives in a nested one (a container); nil on the host's own namespace or when absent.
    public static func innerPID(_ bytes: some Collection<UInt8>) -> Int32? {
        for line in Array(bytes).asciiLines where line.hasASCIIPrefix("NSpid:") {
            let values = line.dropFirst(6).split(whereSeparator: { $0 == 0x09 || $0 == 0x20 })
            guard values.count > 1, let last = values.last else { return nil }
            return ASCIIDecimal.parse(last, as: Int32.self)
        }
        return nil
    }

    /// The effective capability set (`CapEff:`, hex), nil when absent or not hex.
    public static func effectiveCapabilities(_ bytes: some Collection<UInt8>) -> UInt64? {
        for line in Array(bytes).asciiLines where line.hasASCIIPrefix("CapEff:") {
            return UInt64(String(decoding: line.dropFirst(7).trimmingASCIISpaces, as: UTF8.self), radix: 16)
        }
        return nil
    }
}
