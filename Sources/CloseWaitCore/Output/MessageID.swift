/// MessageID is the journal MESSAGE_ID of each kind of event; the catalog
/// (packaging/systemd/closewaitd.catalog) explains each one.
public enum MessageID {
    public static let crossed = "e185260dfe7242159da48af8f29f2002"
    public static let escalated = "9c6d8448f71747e8a4f2b974ed970a20"
    public static let reminder = "59d9d1d17c8e42edaa255b43e98775e9"
    public static let recovered = "0e38331a0a3c46a499f602cb5680faeb"
    public static let samplerFailure = "383fab3d89c042fbb1bc4d9bf64de32b"
    public static let configReloaded = "ebd6229ea723460eb05ae1e09c422f9c"
    public static let configRejected = "ec06e116cb504e1dbac7b69f1372b186"
    public static let started = "4945f8b50fbe464d932a3977a7e93180"
    public static let attributionDegraded = "89e70d1c3ee54120b579ad6246fac63d"
    public static let attributionRecovered = "91b4568eee22485c9e7d7c05f9b07a26"
    /// The host-wide alert for CLOSE_WAIT sockets no process holds (crossed, escalated, reminder).
    public static let unownedSockets = "3c0fc66b4eb94883be1b391c2835909d"
    public static let namespacesIncomplete = "8e102ac37aa446ae906cbf1c19a41a36"
    public static let namespacesComplete = "ff3292b7847641c0b66b7ca34284c235"

    public static func of(_ kind: AlertKind) -> String {
        switch kind {
        case .crossed: crossed
        case .escalated: escalated
        case .reminder: reminder
        case .recovered: recovered
        }
    }
}

extension MessageID {
    /// Sockets and owners come from the eBPF scanner.
    public static let scannerEBPF = "5d3e0a8c9f1b4e27a6c4b8d2e7f09a13"
    /// The daemon polls; when eBPF was asked for (`auto`), the entry says why it cannot run.
    public static let scannerPoll = "b24c7e19d05a4f8e93a1c6e5d8f2b470"
}
