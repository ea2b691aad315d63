/// FdLink reads the target of a /proc/<pid>/fd/<n> link.
public enum FdLink {
    /// The inode of a socket link `socket:[12345]`, or nil for any other target.
    /// Works on raw bytes so the fd walk builds no strings.
    public static func socketInode(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        // "socket:[" is 8 bytes; at least one digit and "]" follow.
        guard bytes.count >= 10, bytes[0] == 0x73, bytes[1] == 0x6f, bytes[2] == 0x63, bytes[3] == 0x6b,
            bytes[4] == 0x65, bytes[5] == 0x74, bytes[6] == 0x3a, bytes[7] == 0x5b,
            bytes[bytes.count - 1] == 0x5d
        else { return nil }
        return ASCIIDecimal.parse(bytes[8..<(bytes.count - 1)], as: UInt64.self)
    }

    public static func socketInode(_ text: String) -> UInt64? {
        var copy = text
        return copy.withUTF8 { socketInode(UnsafeRawBufferPointer($0)) }
    }
}
