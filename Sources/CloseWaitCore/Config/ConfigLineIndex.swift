/// ConfigLineIndex finds the line of each key in the TOML text (the TOML library reports lines
/// only for syntax errors). Keys are dotted paths: `thresholds.count_warning`, `rule[2].ignore`.
public struct ConfigLineIndex: Sendable {
    public private(set) var lines: [String: Int] = [:]

    public init(text: String) {
        var section = ""
        var arrayCounts = [String: Int]()
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.trimmingSpaces.replacingAll("\t", with: " ")
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix(while: { $0 != "]" }).trimmingSpaces
                arrayCounts[name, default: 0] += 1
                section = "\(name)[\(arrayCounts[name]!)]"
                lines[section] = lines[section] ?? number
            } else if line.hasPrefix("[") {
                section = line.dropFirst().prefix(while: { $0 != "]" }).trimmingSpaces
                lines[section] = lines[section] ?? number
            } else if let equals = line.firstIndex(of: "=") {
                var key = line[..<equals].trimmingSpaces
                if key.hasPrefix("\"") && key.hasSuffix("\"") && key.count >= 2 {
                    key = String(key.dropFirst().dropLast())
                }
                let path = section.isEmpty ? key : section + "." + key
                lines[path] = lines[path] ?? number
            }
        }
    }

    public func line(_ path: String) -> Int? { lines[path] }
}
