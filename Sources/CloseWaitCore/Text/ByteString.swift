/// ByteString is text another user controls (a process's comm, exe path, cmdline, cgroup path)
/// kept exactly as the kernel gave it: any bytes, not necessarily UTF-8, possibly holding
/// control characters. It is never shown raw: render it with `escaped` for a terminal, a log
/// line or sd_notify STATUS, and with `lossy` inside JSON (whose own escaping then applies).
/// The journal gets `bytes` unchanged (its native protocol is binary-safe).
public struct ByteString: Hashable, Sendable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
    }

    public init(_ string: String) {
        bytes = Array(string.utf8)
    }

    public init(stringLiteral value: String) {
        self.init(value)
    }

    public var isEmpty: Bool { bytes.isEmpty }
    public var count: Int { bytes.count }

    /// The text with every invalid UTF-8 sequence replaced by U+FFFD; still may hold controls.
    public var lossy: String { String(decoding: bytes, as: UTF8.self) }

    /// Safe to print anywhere: see `Escape.bytes`.
    public var escaped: String { Escape.bytes(bytes) }

    public var description: String { escaped }

    public static func < (a: ByteString, b: ByteString) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public static func + (a: ByteString, b: ByteString) -> ByteString { ByteString(a.bytes + b.bytes) }
}

/// Escape makes untrusted text safe to show, the way systemd's cescape and
/// utf8_escape_non_printable do: nothing a terminal, a line-based log or the sd_notify
/// protocol interprets survives raw.
public enum Escape {
    /// Every byte string as printable text that round-trips unambiguously: a backslash becomes
    /// `\\`; `\n`, `\r`, `\t` keep their C names; other C0 controls, DEL, C1 controls and
    /// bytes that are not valid UTF-8 become `\xNN`; Unicode format characters that reorder or
    /// hide text (bidi overrides, zero-width joiners, line/paragraph separators) become `\uNNNN`,
    /// and so does a combining mark at the start, which would otherwise merge with whatever is
    /// printed before the text (a column separator, a `(`).
    public static func bytes(_ input: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(input.count)
        var first = true
        forEachUnit(input) { unit in
            switch unit {
            case let .scalar(scalar, encoded):
                if scalar == "\\" {
                    out += [0x5c, 0x5c]
                } else if first && combinesWithPrevious(scalar) {
                    unicodeEscape(scalar, to: &out)
                } else {
                    append(scalar, encoded, to: &out)
                }
            case let .invalid(byte): hex(byte, to: &out)
            }
            first = false
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An already assembled message (whose untrusted parts were escaped with `bytes`) made
    /// safe for one line: controls and hiding format characters escaped as in `bytes`,
    /// backslashes left as they are so escaped parts are not escaped twice.
    public static func line(_ text: String) -> String {
        var fast = true
        for scalar in text.unicodeScalars where needsEscape(scalar) { fast = false; break }
        if fast { return text }
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + 8)
        forEachUnit(text.utf8) { unit in
            if case let .scalar(scalar, encoded) = unit { append(scalar, encoded, to: &out) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `line(text)` cut to at most `limit` bytes of UTF-8 at a character boundary, with `…`
    /// marking the cut (sd_notify STATUS, where the manager keeps what it is sent).
    public static func line(_ text: String, limit: Int) -> String {
        let safe = line(text)
        guard safe.utf8.count > limit else { return safe }
        var kept = ""
        var used = 0
        for character in safe {
            let size = character.utf8.count
            if used + size > limit - 3 { break }
            kept.append(character)
            used += size
        }
        return kept + "…"
    }

    /// Whether a scalar is escaped by `bytes` and `line` (besides the backslash): controls, and
    /// the invisible format characters (bidi overrides, zero-width characters, tags, soft
    /// hyphen) and line/paragraph separators that reorder, hide or split text.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 || v == 0x7f || (v >= 0x80 && v <= 0x9f) { return true }
        if v < 0xa0 { return false }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .control, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    /// A mark or modifier that joins the character before it into one.
    static func combinesWithPrevious(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value >= 0x300 else { return false }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return scalar.properties.isEmojiModifier || scalar.properties.isVariationSelector
        }
    }

    enum Unit {
        case scalar(Unicode.Scalar, ArraySlice<UInt8>)
        case invalid(UInt8)
    }

    /// Walks UTF-8 bytes as scalars, and each byte of an invalid sequence on its own.
    static func forEachUnit(_ input: some Collection<UInt8>, _ body: (Unit) -> Void) {
        let bytes = Array(input)
        var index = 0
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded):
                let length = encoded.count
                body(.scalar(Unicode.UTF8.decode(encoded), bytes[index..<index + length]))
                index += length
            case let .error(length):
                for byte in bytes[index..<index + length] { body(.invalid(byte)) }
                index += length
            case .emptyInput:
                return
            }
        }
    }

    private static func append(_ scalar: Unicode.Scalar, _ encoded: ArraySlice<UInt8>, to out: inout [UInt8]) {
        guard needsEscape(scalar) else { out += encoded; return }
        switch scalar {
        case "\n": out += [0x5c, 0x6e]
        case "\r": out += [0x5c, 0x72]
        case "\t": out += [0x5c, 0x74]
        default:
            if scalar.value < 0xa0 {
                for byte in encoded { hex(byte, to: &out) }
            } else {
                unicodeEscape(scalar, to: &out)
            }
        }
    }

    /// `\uNNNN`, or `\UNNNNNNNN` beyond the BMP, as C writes them.
    private static func unicodeEscape(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
        if scalar.value > 0xffff {
            out += Array("\\U".utf8) + hexDigits(scalar.value, width: 8)
        } else {
            out += Array("\\u".utf8) + hexDigits(scalar.value, width: 4)
        }
    }

    private static func hex(_ byte: UInt8, to out: inout [UInt8]) {
        out += [0x5c, 0x78] + hexDigits(UInt32(byte), width: 2)
    }

    static func hexDigits(_ value: UInt32, width: Int) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        return (0..<width).reversed().map { digits[Int((value >> (4 * UInt32($0))) & 0xf)] }
    }
}
