import CloseWaitCore
import CloseWaitLinux
import TOMLKit

/// ConfigLoader reads the TOML config file and validates it into Settings.
public enum ConfigLoader {
    public static let defaultPath = "/etc/closewaitd/closewaitd.toml"

    public static func load(path: String) -> Result<Settings, ConfigErrors> {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch {
            return .failure(ConfigErrors(problems: [ConfigProblem(file: path, line: nil, key: "", message: "cannot read the file: \(error.description)")]))
        }
        return parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) -> Result<Settings, ConfigErrors> {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let where_ = error.source.begin
            return .failure(ConfigErrors(problems: [ConfigProblem(
                file: file, line: where_.line, key: "",
                message: "TOML syntax error at column \(where_.column): \(error.description)")]))
        } catch {
            return .failure(ConfigErrors(problems: [ConfigProblem(file: file, line: nil, key: "", message: "\(error)")]))
        }
        return SettingsParser.parse(node(table), file: file, text: text)
    }

    static func node(_ value: TOMLValueConvertible) -> ConfigNode {
        switch value.type {
        case .table:
            var members = [String: ConfigNode]()
            if let table = value.table { for (key, member) in table { members[key] = node(member) } }
            return .table(members)
        case .array:
            return .array(value.array.map { $0.map(node) } ?? [])
        case .string: return .string(value.string ?? "")
        case .int: return .int(value.int ?? 0)
        case .double: return .double(value.double ?? 0)
        case .bool: return .bool(value.bool ?? false)
        default: return .other(value.type.rawValue)
        }
    }
}
