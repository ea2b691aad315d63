/// ElfGoBuildInfo finds the Go toolchain version in an executable: the `.go.buildinfo`
/// section of a 64-bit little-endian ELF file, which Go 1.18 and later write with the version
/// inline ("\xff Go buildinf:", pointer size, flags, then a varint-prefixed string). The
/// bytes come from another user's executable: every offset and length is checked.
public enum ElfGoBuildInfo {
    /// The section table's place, from the 64-byte ELF header; nil when not a 64-bit LE ELF.
    public static func sectionTable(header: [UInt8]) -> (offset: UInt64, entrySize: Int, count: Int, names: Int)? {
        guard header.count >= 64, header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46,
            header[4] == 2, header[5] == 1
        else { return nil }
        let entrySize = Int(u16(header, 0x3a)), count = Int(u16(header, 0x3c)), names = Int(u16(header, 0x3e))
        guard entrySize >= 64, count > 0, names < count else { return nil }
        return (u64(header, 0x28), entrySize, count, names)
    }

    /// Offset and size of section `index` in the table.
    public static func section(_ table: [UInt8], entrySize: Int, index: Int) -> (
        name: UInt32, offset: UInt64, size: UInt64
    )? {
        let base = index * entrySize
        guard index >= 0, base + 64 <= table.count else { return nil }
        return (u32(table, base), u64(table, base + 0x18), u64(table, base + 0x20))
    }

    /// The NUL-terminated name at `offset` in the section-name table.
    public static func name(_ names: [UInt8], at offset: UInt32) -> [UInt8]? {
        let start = Int(offset)
        guard start < names.count, let end = names[start...].firstIndex(of: 0) else { return nil }
        return Array(names[start..<end])
    }

    /// The version string from the start of `.go.buildinfo` (`go1.21.3`), nil when absent or
    /// in the pre-1.18 pointer form.
    public static func version(_ section: [UInt8]) -> String? {
        // "\xff" is one byte in the file (two in a Swift string's UTF-8): compare bytes.
        let expected: [UInt8] = [0xff] + Array(" Go buildinf:".utf8)
        guard section.count >= 33, Array(section[0..<14]) == expected, section[15] & 2 != 0 else { return nil }
        var i = 32
        var length = 0, shift = 0
        while i < section.count, shift < 28 {
            let byte = section[i]
            length |= Int(byte & 0x7f) << shift
            i += 1
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length > 0, length <= 64, i + length <= section.count else { return nil }
        let text = section[i..<(i + length)]
        guard text.starts(with: Array("go".utf8)), text.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
}
