/// ScannerMessage is the journal entry said when the scanner is chosen or changes: eBPF, or
/// polling and why eBPF cannot run.
public enum ScannerMessage {
    public static func entry(_ scanner: ScannerStatus) -> JournalEntry {
        var fields: [(String, ByteString)] = [
            ("CLOSEWAIT_SCANNER", ByteString(scanner.active.rawValue)),
            ("CLOSEWAIT_SCANNER_CHOICE", ByteString(scanner.choice.rawValue)),
        ]
        switch scanner.active {
        case .ebpf:
            fields.append(("CLOSEWAIT_BPF_ATTACH", ByteString(scanner.attach ?? "")))
            return JournalEntry(
                message:
                    "scanning with eBPF: one iterator pass over every process's open files finds every CLOSE_WAIT socket and its holders in every network namespace; ticks reuse it while no socket enters or leaves CLOSE_WAIT (state changes counted by inet_sock_set_state, \(scanner.attach ?? "attached"))",
                priority: .info, messageID: MessageID.scannerEBPF, fields: fields)
        case .poll:
            guard let reason = scanner.reason else {
                return JournalEntry(
                    message:
                        "scanning by polling (daemon.scanner = \"\(scanner.choice.rawValue)\"): the kernel's socket tables and /proc/*/fd",
                    priority: .info, messageID: MessageID.scannerPoll, fields: fields)
            }
            fields.append(("CLOSEWAIT_REASON", ByteString(reason)))
            return JournalEntry(
                message:
                    "eBPF scanner unavailable (\(Escape.line(reason))); polling the kernel's socket tables and /proc/*/fd instead",
                priority: scanner.choice == .auto ? .notice : .warning, messageID: MessageID.scannerPoll,
                fields: fields)
        }
    }
}
