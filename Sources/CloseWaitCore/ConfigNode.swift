/// ConfigNode is a parsed config document, independent of the TOML library that read it, so
/// validation stays pure and testable.
public indirect enum ConfigNode: Equatable, Sendable {
    case table([String: ConfigNode])
    case array([ConfigNode])
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    /// A value of a type the config never uses (dates, times), named.
    case other(String)

    var typeName: String {
        switch self {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "a boolean"
        case let .other(name): "a \(name)"
        }
    }
}

/// ConfigProblem is one thing wrong with a config file, printed `FILE:LINE: key: what`.
public struct ConfigProblem: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let location = Escape.line(line.map { "\(file):\($0)" } ?? file)
        return key.isEmpty ? "\(location): \(Escape.line(message))" : "\(location): \(Escape.line(key)): \(Escape.line(message))"
    }
}

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
                if key.hasPrefix("\"") && key.hasSuffix("\"") && key.count >= 2 { key = String(key.dropFirst().dropLast()) }
                let path = section.isEmpty ? key : section + "." + key
                lines[path] = lines[path] ?? number
            }
        }
    }

    public func line(_ path: String) -> Int? { lines[path] }
}

/// Edit distance, for "did you mean" suggestions on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
