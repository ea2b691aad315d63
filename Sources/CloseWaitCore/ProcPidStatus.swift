/// ProcPidStatus reads the real uid from /proc/<pid>/status (`Uid:\treal\teffective\tsaved\tfs`).
public enum ProcPidStatus {
    public static func parseUID(_ text: String) throws(ProcFileError) -> UInt32 {
        var number = 0
        for line in text.split(separator: "\n") {
            number += 1
            guard line.hasPrefix("Uid:") else { continue }
            let values = line.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard let first = values.first, let uid = UInt32(first) else {
                throw .malformed(line: number, key: "Uid", detail: "not a number")
            }
            return uid
        }
        throw .malformed(line: number, key: "Uid", detail: "no Uid line")
    }
}
