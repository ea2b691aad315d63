/// TimeSpan parses systemd's time-span syntax (systemd.time(7)): `30s`, `5min`, `1h 30min`,
/// `250ms`, `2d`; a bare number means seconds. Values are seconds as a Double.
public enum TimeSpan {
    static let units: [(names: [String], seconds: Double)] = [
        (["us", "usec", "µs"], 1e-6),
        (["ms", "msec"], 1e-3),
        (["s", "sec", "second", "seconds"], 1),
        (["m", "min", "minute", "minutes"], 60),
        (["h", "hr", "hour", "hours"], 3600),
        (["d", "day", "days"], 86400),
        (["w", "week", "weeks"], 604_800),
    ]

    /// The seconds `text` spells, or nil. Numbers are plain decimals (`1.5`): no sign, no
    /// exponent, no `inf`/`nan`, so every result is finite and non-negative; the caller checks
    /// its range.
    public static func parse(_ text: String) -> Double? {
        let trimmed = Substring(text.trimmingSpaces)
        guard !trimmed.isEmpty else { return nil }
        if let plain = decimal(trimmed) { return plain }
        var total = 0.0
        var rest = trimmed
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " })
            let number = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
            guard let value = decimal(number) else { return nil }
            rest = rest.dropFirst(number.count).drop(while: { $0 == " " })
            let unit = rest.prefix(while: { ($0.isASCII && $0.isLetter) || $0 == "µ" })
            guard let factor = units.first(where: { $0.names.contains(String(unit)) })?.seconds else { return nil }
            rest = rest.dropFirst(unit.count)
            total += value * factor
        }
        return total.isFinite ? total : nil
    }

    /// `digits[.digits]` or `.digits`, ASCII only.
    static func decimal(_ text: Substring) -> Double? {
        guard !text.isEmpty, text != "." else { return nil }
        var dots = 0
        for c in text.utf8 {
            if c == UInt8(ascii: ".") { dots += 1; continue }
            guard c >= 0x30 && c <= 0x39 else { return nil }
        }
        guard dots <= 1, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// A short human form: `45s`, `14min`, `2h 5min`, `3d 4h`. Total: any Double prints,
    /// however large, negative or not a number.
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite else { return seconds.isNaN ? "nan" : (seconds < 0 ? "-infinity" : "infinity") }
        if seconds < 0 { return "-" + format(-seconds) }
        if seconds > 0 && seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds >= 1e12 { return "\(seconds)s" }  // beyond 30,000 years: Swift's shortest form
        let s = Int(saturating: seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)min" }
        if s < 86400 { return s % 3600 / 60 == 0 ? "\(s / 3600)h" : "\(s / 3600)h \(s % 3600 / 60)min" }
        return s % 86400 / 3600 == 0 ? "\(s / 86400)d" : "\(s / 86400)d \(s % 86400 / 3600)h"
    }
}
