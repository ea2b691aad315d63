/// Glob matches shell-style patterns (`*`, `?`, `[abc]`, `[!a-z]`) as fnmatch(3) without flags,
/// used by `--unit` filters and config rules. Pure, so rules can be tested as values.
/// Patterns are text; the matched names are untrusted bytes: each valid UTF-8 character is one
/// unit, and each byte of an invalid sequence is a unit of its own that only `?`, `*` and a
/// negated set match.
public enum Glob {
    public static func matches(_ pattern: String, _ text: ByteString) -> Bool {
        matches(pattern.unicodeScalars.map(\.value), units(text.bytes))
    }

    public static func matches(_ pattern: String, _ text: String) -> Bool {
        matches(pattern.unicodeScalars.map(\.value), text.unicodeScalars.map(\.value))
    }

    /// The fewest bytes a text matching `pattern` can have (`*` matches none, `?` and a set
    /// at least one): a comm pattern needing more than 15 can never match.
    public static func minimumLength(_ pattern: String) -> Int {
        let p = pattern.unicodeScalars.map(\.value)
        var i = 0, total = 0
        while i < p.count {
            switch p[i] {
            case 0x2a: i += 1
            case 0x3f: total += 1; i += 1
            case 0x5b:
                if let end = setEnd(p, i) { total += 1; i = end } else { total += 1; i += 1 }
            case 0x5c where i + 1 < p.count:
                total += Unicode.Scalar(p[i + 1]).map { UTF8.width($0) } ?? 1; i += 2
            default:
                total += Unicode.Scalar(p[i]).map { UTF8.width($0) } ?? 1; i += 1
            }
        }
        return total
    }

    /// Invalid bytes map above the Unicode range, so no pattern character equals one.
    static func units(_ bytes: [UInt8]) -> [UInt32] {
        var out = [UInt32]()
        out.reserveCapacity(bytes.count)
        Escape.forEachUnit(bytes) { unit in
            switch unit {
            case let .scalar(scalar, _): out.append(scalar.value)
            case let .invalid(byte): out.append(0x110000 + UInt32(byte))
            }
        }
        return out
    }

    static func matches(_ p: [UInt32], _ t: [UInt32]) -> Bool {
        var pi = 0, ti = 0, starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count, p[pi] == 0x2a {
                starP = pi; starT = ti; pi += 1
                continue
            }
            if pi < p.count, let next = matchOne(p, pi, t[ti]) {
                pi = next; ti += 1
                continue
            }
            if starP >= 0 {
                pi = starP + 1; starT += 1; ti = starT
                continue
            }
            return false
        }
        while pi < p.count && p[pi] == 0x2a { pi += 1 }
        return pi == p.count
    }

    /// The index after the `]` closing the set that starts at p[pi], or nil if unterminated.
    private static func setEnd(_ p: [UInt32], _ pi: Int) -> Int? {
        var i = pi + 1
        if i < p.count, p[i] == 0x21 || p[i] == 0x5e { i += 1 }
        var first = true
        while i < p.count, p[i] != 0x5d || first { first = false; i += 1 }
        return i < p.count ? i + 1 : nil
    }

    /// If p[pi] matches c, the index after the pattern element.
    private static func matchOne(_ p: [UInt32], _ pi: Int, _ c: UInt32) -> Int? {
        switch p[pi] {
        case 0x3f: return pi + 1
        case 0x5b:
            var i = pi + 1
            var negate = false
            if i < p.count, p[i] == 0x21 || p[i] == 0x5e { negate = true; i += 1 }
            var matched = false
            var first = true
            while i < p.count, p[i] != 0x5d || first {
                first = false
                if i + 2 < p.count, p[i + 1] == 0x2d, p[i + 2] != 0x5d {
                    if p[i] <= c && c <= p[i + 2] { matched = true }
                    i += 3
                } else {
                    if p[i] == c { matched = true }
                    i += 1
                }
            }
            guard i < p.count else { return p[pi] == c ? pi + 1 : nil }  // unterminated: literal "["
            return matched != negate ? i + 1 : nil
        case 0x5c where pi + 1 < p.count:
            return p[pi + 1] == c ? pi + 2 : nil
        default:
            return p[pi] == c ? pi + 1 : nil
        }
    }
}
