/// ProcPidLimits reads the soft `Max open files` limit from /proc/<pid>/limits.
public enum ProcPidLimits {
    /// The soft RLIMIT_NOFILE, or nil when it is `unlimited`.
    public static func softOpenFiles(_ text: String) throws(ProcFileError) -> UInt64? {
        var number = 0
        for line in text.split(separator: "\n") {
            number += 1
            guard line.hasPrefix("Max open files") else { continue }
            let values = line.dropFirst("Max open files".count).split(separator: " ", omittingEmptySubsequences: true)
            guard let soft = values.first else { throw .malformed(line: number, key: "Max open files", detail: "no soft limit") }
            if soft == "unlimited" { return nil }
            guard let value = UInt64(soft) else {
                throw .malformed(line: number, key: "Max open files", detail: "soft limit \(soft) is not a number")
            }
            return value
        }
        throw .malformed(line: number, key: "Max open files", detail: "no such line")
    }
}
