/// NamespaceLink reads the target of a /proc/<pid>/ns/<type> link: `net:[4026531992]`.
public enum NamespaceLink {
    /// The namespace inode when `bytes` is `<type>:[digits]`, else nil.
    public static func inode(_ bytes: some Collection<UInt8>, type: String) -> UInt64? {
        let text = Array(bytes)
        let prefix = Array((type + ":[").utf8)
        guard text.count > prefix.count + 1, text.starts(with: prefix), text.last == UInt8(ascii: "]") else {
            return nil
        }
        return ASCIIDecimal.parse(text[prefix.count..<(text.count - 1)], as: UInt64.self)
    }
}

/// NamespaceChoice is `daemon.namespaces`: sample every network namespace on the host, or
/// only the daemon's own.
public enum NamespaceChoice: String, Sendable, CaseIterable {
    case all, own
}
