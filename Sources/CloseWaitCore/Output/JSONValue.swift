/// JSONValue is a JSON document with ordered object keys, rendered without Foundation so the
/// `--json` output keeps a stable key order.
public indirect enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.rendered() == rhs.rendered() }

    public static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    public static func optional<T: BinaryInteger>(_ value: T?) -> JSONValue {
        value.map { JSONValue.int(Int64($0)) } ?? .null
    }
    public static func number<T: BinaryInteger>(_ value: T) -> JSONValue { .int(Int64(value)) }

    /// Compact JSON, or indented by two spaces with `pretty`.
    public func rendered(pretty: Bool = false) -> String {
        String(decoding: renderedBytes(pretty: pretty), as: UTF8.self)
    }

    /// The same as UTF-8 bytes, built in one buffer (large documents render in one pass).
    public func renderedBytes(pretty: Bool = false) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4096)
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    private static func newline(_ out: inout [UInt8], _ pretty: Bool, _ indent: Int) {
        guard pretty else { return }
        out.append(0x0a)
        for _ in 0..<(indent * 2) { out.append(0x20) }
    }

    private func write(to out: inout [UInt8], pretty: Bool, indent: Int) {
        switch self {
        case let .object(members):
            if members.isEmpty { out += [0x7b, 0x7d]; return }
            out.append(0x7b)
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(0x2c) }
                Self.newline(&out, pretty, indent + 1)
                Self.writeString(key, to: &out)
                out.append(0x3a)
                if pretty { out.append(0x20) }
                value.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            Self.newline(&out, pretty, indent)
            out.append(0x7d)
        case let .array(items):
            if items.isEmpty { out += [0x5b, 0x5d]; return }
            out.append(0x5b)
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(0x2c) }
                Self.newline(&out, pretty, indent + 1)
                item.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            Self.newline(&out, pretty, indent)
            out.append(0x5d)
        case let .string(s): Self.writeString(s, to: &out)
        case let .int(n): out += String(n).utf8
        case let .double(d): out += (d.isFinite ? String(d) : "null").utf8
        case let .bool(b): out += (b ? "true" : "false").utf8
        case .null: out += "null".utf8
        }
    }

    private static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for byte in s.utf8 {
            switch byte {
            case 0x22: out += [0x5c, 0x22]
            case 0x5c: out += [0x5c, 0x5c]
            case 0x0a: out += [0x5c, 0x6e]
            case 0x0d: out += [0x5c, 0x72]
            case 0x09: out += [0x5c, 0x74]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [0x5c, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }
}
