/// ScannerStatus is which scanner a tick used and, when it is not eBPF, why: said once in the
/// journal, on every STATUS line, in `closewaitd status`, `snapshot --json` and as
/// `closewaitd_scanner_info`.
public struct ScannerStatus: Sendable, Equatable {
    public enum Active: String, Sendable { case ebpf, poll }
    public var active: Active
    /// What was asked (`daemon.scanner`).
    public var choice: ScannerChoice
    /// Why eBPF is not used (nil when it is, or when polling was asked for).
    public var reason: String?
    /// How the state-change counter is attached (`tp_btf`, `raw_tp`) when eBPF is used.
    public var attach: String?

    public init(active: Active, choice: ScannerChoice, reason: String? = nil, attach: String? = nil) {
        self.active = active
        self.choice = choice
        self.reason = reason
        self.attach = attach
    }

    /// `ebpf (tp_btf)`, `poll`, `poll (eBPF unavailable: …)`.
    public var summary: String {
        switch active {
        case .ebpf: return "ebpf" + (attach.map { " (\($0))" } ?? "")
        case .poll: return "poll" + (reason.map { " (eBPF unavailable: \($0))" } ?? "")
        }
    }
}

/// BPFLoadLog turns what libbpf and the verifier printed while the programs failed to load
/// into the one line an operator needs: which program, and the verifier's (or libbpf's) own
/// words. The log holds every attempt (the 6.2+ object, then the compat one).
public enum BPFLoadLog {
    public static func reason(_ log: String, limit: Int = 300) -> String? {
        let lines = log.split(whereSeparator: { $0 == "\n" }).map { String($0) }
        var refusals = [String]()
        var others = [String]()
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if line.hasSuffix("-- BEGIN PROG LOAD LOG --") {
                let program = programName(line) ?? programName(index > 0 ? lines[index - 1] : "")
                var end = index + 1
                while end < lines.count && !lines[end].hasSuffix("-- END PROG LOAD LOG --") { end += 1 }
                let useful = lines[(index + 1)..<end].last(where: isVerdict)
                if let useful {
                    refusals.append(
                        "the verifier refused program '\(program ?? "?")': \(useful.trimmingSpaces)")
                }
                index = end + 1
                continue
            }
            if line.hasPrefix("libbpf: "), line.contains("not found") || line.contains("failed to") {
                let text = String(line.dropFirst("libbpf: ".count))
                if !text.hasPrefix("failed to load BPF skeleton"), !text.hasPrefix("failed to load object"),
                    !text.contains("failed to load: ")
                {
                    others.append(text)
                }
            }
            index += 1
        }
        guard let chosen = refusals.first ?? others.first else { return nil }
        return Escape.line(chosen, limit: limit)
    }

    /// `prog 'scan': …` -> `scan`.
    static func programName(_ line: String) -> String? {
        let marker = Array("prog '")
        let chars = Array(line)
        guard chars.count > marker.count else { return nil }
        for start in 0...(chars.count - marker.count) where Array(chars[start..<start + marker.count]) == marker {
            let rest = chars[(start + marker.count)...]
            guard let close = rest.firstIndex(of: "'") else { return nil }
            return String(rest[..<close])
        }
        return nil
    }

    /// A line of the verifier's log that says what is wrong: not an instruction of the trace
    /// (`12: (15) if r9 == 0x0 …`), not a source line (`; …`), not the closing statistics.
    static func isVerdict(_ line: String) -> Bool {
        let text = line.trimmingSpaces
        if text.isEmpty || text.hasPrefix(";") || text.hasPrefix("processed ") || text.hasPrefix("verification time")
            || text.hasPrefix("stack depth") || text.hasPrefix("func '") || text.hasPrefix("from ")
        {
            return false
        }
        if let colon = text.firstIndex(of: ":"), text[..<colon].allSatisfy(\.isNumber), !text[..<colon].isEmpty {
            // `63: <invalid CO-RE relocation>` says something; `12: (15) if …` and `2: R1=…` do not.
            let after = text[text.index(after: colon)...].trimmingSpaces
            return after.hasPrefix("<")
        }
        return true
    }
}
