import CloseWaitCore
import CloseWaitLinux
import TOMLKit

/// ConfigLoader reads the TOML config file and validates it into Settings.
public enum ConfigLoader {
    public static let defaultPath = "/etc/closewaitd/closewaitd.toml"

    /// A config is a few KiB; anything past this is not one.
    public static let maximumSize = 1 << 20

    public static func load(path: String) -> Result<Settings, ConfigErrors> {
        let bytes: [UInt8]
        do {
            bytes = try readRegularFile(path, limit: maximumSize)
        } catch {
            return .failure(
                ConfigErrors(problems: [
                    ConfigProblem(file: path, line: nil, key: "", message: "cannot read the file: \(error.description)")
                ]))
        }
        return parse(bytes, file: path)
    }

    /// Validates the bytes as UTF-8 (TOML is UTF-8; a stray byte is named, not replaced), then
    /// parses them.
    public static func parse(_ bytes: [UInt8], file: String) -> Result<Settings, ConfigErrors> {
        if let bad = firstInvalidUTF8(bytes) {
            return .failure(
                ConfigErrors(problems: [
                    ConfigProblem(
                        file: file, line: bad.line, key: "",
                        message:
                            "not valid UTF-8: byte 0x\(String(bad.byte, radix: 16)) at column \(bad.column) (TOML files are UTF-8)"
                    )
                ]))
        }
        if let nul = bytes.firstIndex(of: 0) {
            let line = bytes[..<nul].reduce(1) { $0 + ($1 == 0x0a ? 1 : 0) }
            return .failure(
                ConfigErrors(problems: [ConfigProblem(file: file, line: line, key: "", message: "contains a NUL byte")])
            )
        }
        return parse(String(decoding: bytes, as: UTF8.self), file: file)
    }

    /// The line and column of the first `[table]` or `[[table]]` header whose name does not
    /// start with a bare-key character or a quote. Lines inside multi-line strings are skipped.
    static func badTableHeader(_ text: String) -> (Int, Int)? {
        var inMultiline: String?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let scalars = Array(line.unicodeScalars)
            var i = 0
            if inMultiline == nil {
                while i < scalars.count, scalars[i] == " " || scalars[i] == "\t" { i += 1 }
                if i < scalars.count, scalars[i] == "[" {
                    i += 1
                    if i < scalars.count, scalars[i] == "[" { i += 1 }
                    while i < scalars.count, scalars[i] == " " || scalars[i] == "\t" { i += 1 }
                    // The name must follow on the same line.
                    guard i < scalars.count else { return (index + 1, i + 1) }
                    let c = scalars[i]
                    let startsKey =
                        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
                        || c == "_" || c == "-" || c == "\"" || c == "'" || c == "]"
                    if !startsKey { return (index + 1, i + 1) }
                }
            }
            // Track multi-line strings so their content is not taken for headers: a small
            // lexer over the line that knows quotes, escapes and comments.
            inMultiline = Self.multilineState(after: scalars, startingIn: inMultiline)
        }
        return nil
    }

    /// Whether a line leaves a multi-line string (`"""` or `'''`) open, given the one it
    /// started in: strings and escapes are followed, and a `#` outside strings ends the line.
    static func multilineState(after line: [Unicode.Scalar], startingIn open: String?) -> String? {
        var open = open
        var i = 0
        func at(_ text: String) -> Bool {
            let s = Array(text.unicodeScalars)
            return i + s.count <= line.count && Array(line[i..<i + s.count]) == s
        }
        while i < line.count {
            if let delimiter = open {
                if delimiter == "\"\"\"" && line[i] == "\\" { i += 2; continue }
                if at(delimiter) { open = nil; i += 3; continue }
                i += 1
                continue
            }
            if at("\"\"\"") || at("'''") { open = String(String.UnicodeScalarView(line[i..<i + 3])); i += 3; continue }
            switch line[i] {
            case "#": return nil
            case "\"":
                i += 1
                while i < line.count && line[i] != "\"" { i += line[i] == "\\" ? 2 : 1 }
                i += 1
            case "'":
                i += 1
                while i < line.count && line[i] != "'" { i += 1 }
                i += 1
            default:
                i += 1
            }
        }
        return open
    }

    /// The first line (not a comment) spelling a NUL character as a TOML escape.
    static func nulEscapeLine(_ text: String) -> Int? {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("#") { continue }
            // A byte search: String.contains(String) would bind to Foundation's (TOMLKit
            // imports it) and link all of Foundation and ICU into the daemon (+50 MB, +4 MiB RSS).
            let bytes = Array(line.utf8)
            let needle = Array("\\u0000".utf8)
            if bytes.count >= needle.count,
                (0...(bytes.count - needle.count)).contains(where: { start in
                    (0..<needle.count).allSatisfy { i in
                        let b = bytes[start + i]
                        return (b >= 0x41 && b <= 0x5a ? b + 0x20 : b) == needle[i]
                    }
                })
            {
                return index + 1
            }
        }
        return nil
    }

    /// The line, column and byte of the first invalid UTF-8 sequence, if any.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (line: Int, column: Int, byte: UInt8)? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0, line = 1, column = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded):
                if encoded.count == 1 && encoded.first == 0x0a { line += 1; column = 1 } else { column += 1 }
                offset += encoded.count
            case .error:
                return (line, column, bytes[offset])
            case .emptyInput:
                return nil
            }
        }
    }

    public static func parse(_ text: String, file: String) -> Result<Settings, ConfigErrors> {
        if let (line, column) = badTableHeader(text) {
            // toml++ 3.4 (inside TOMLKit) asserts, and so aborts the process, on a header
            // whose name starts with a character no key may start with (`[@a]`, `[.a]`):
            // found by `make fuzz`. Such a header is a syntax error; say so before it gets there.
            return .failure(
                ConfigErrors(problems: [
                    ConfigProblem(
                        file: file, line: line, key: "",
                        message:
                            "TOML syntax error at column \(column): a table header needs a name (letters, digits, _ or -, or a quoted string) after '['"
                    )
                ]))
        }
        if let line = nulEscapeLine(text) {
            // TOMLKit hands strings over as C strings, so "a\u0000b" would silently become "a".
            return .failure(
                ConfigErrors(problems: [
                    ConfigProblem(
                        file: file, line: line, key: "",
                        message: "a NUL escape (\\u0000) in a string: no process, path or unit name holds a NUL")
                ]))
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let where_ = error.source.begin
            return .failure(
                ConfigErrors(problems: [
                    ConfigProblem(
                        file: file, line: where_.line, key: "",
                        message: "TOML syntax error at column \(where_.column): \(error.description)")
                ]))
        } catch {
            return .failure(
                ConfigErrors(problems: [ConfigProblem(file: file, line: nil, key: "", message: "\(error)")]))
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
