/// ASCIIDecimal reads unsigned decimal numbers from kernel text without making strings.
enum ASCIIDecimal {
    static func parse<T: FixedWidthInteger>(_ digits: some Collection<UInt8>, as: T.Type) -> T? {
        guard !digits.isEmpty else { return nil }
        var value: T = 0
        for byte in digits {
            let digit = byte &- 0x30
            guard digit < 10 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(T(digit))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value
    }
}

extension BidirectionalCollection where Element == UInt8 {
    /// Without leading and trailing spaces, tabs and newlines.
    var trimmingASCIISpaces: SubSequence {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d }
        var slice = self[...]
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }
}

extension Collection where Element == UInt8 {
    /// The lines of kernel text, split on `\n` only (never on `\r` or grapheme clusters).
    var asciiLines: [SubSequence] { split(separator: 0x0a, omittingEmptySubsequences: true) }

    func hasASCIIPrefix(_ prefix: String) -> Bool { starts(with: prefix.utf8) }
}
