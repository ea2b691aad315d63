/// ProcPidStatus reads the real uid from /proc/<pid>/status (`Uid:\treal\teffective\tsaved\tfs`).
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
}
