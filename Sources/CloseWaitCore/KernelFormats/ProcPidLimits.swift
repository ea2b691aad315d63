/// ProcPidLimits reads the soft `Max open files` limit from /proc/<pid>/limits.
public enum ProcPidLimits {
    /// The soft RLIMIT_NOFILE, or nil when it is `unlimited`.
    public static func softOpenFiles(_ bytes: some Collection<UInt8>) throws(ProcFileError) -> UInt64? {
        var number = 0
        let key = "Max open files"
        for line in Array(bytes).asciiLines {
            number += 1
            guard line.hasASCIIPrefix(key) else { continue }
            let values = line.dropFirst(key.utf8.count).split(separator: 0x20, omittingEmptySubsequences: true)
            guard let soft = values.first else { throw .malformed(line: number, key: key, detail: "no soft limit") }
            if soft.elementsEqual("unlimited".utf8) { return nil }
            guard let value = ASCIIDecimal.parse(soft, as: UInt64.self) else {
                throw .malformed(line: number, key: key, detail: "soft limit \(Escape.bytes(soft)) is not a number")
            }
            return value
        }
        throw .malformed(line: number, key: key, detail: "no such line")
    }

    public static func softOpenFiles(_ text: String) throws(ProcFileError) -> UInt64? {
        try softOpenFiles(Array(text.utf8))
    }
}
