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
        return key.isEmpty
            ? "\(location): \(Escape.line(message))" : "\(location): \(Escape.line(key)): \(Escape.line(message))"
    }
}
