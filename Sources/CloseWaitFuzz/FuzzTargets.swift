import CloseWaitCore
import CloseWaitDaemon

/// FuzzTargets are the entry points libFuzzer drives (`make fuzz`, Sources/closewaitd-fuzz)
/// and the unit tests replay over the seed corpora: every parser of bytes that someone else
/// controls, each checked for the properties that must hold on any input, not only for not
/// crashing. A violated property stops the fuzzer with a trap.
public enum FuzzTargets {
    public static let names = [
        "inet-diag", "proc-net-tcp", "proc-pid-stat", "proc-pid-status", "proc-pid-cgroup",
        "proc-pid-limits", "fd-link", "time-span", "config", "state-document", "escape",
        "http-request", "listen-address", "runtime-state",
    ]

    /// Runs the named target on one input; false for an unknown name.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8]) -> Bool {
        switch name {
        case "inet-diag": inetDiag(data)
        case "proc-net-tcp": procNetTCP(data)
        case "proc-pid-stat": procPidStat(data)
        case "proc-pid-status":
            _ = try? ProcPidStatus.parseUID(data)
            _ = ProcPidStatus.innerPID(data)
        case "proc-pid-cgroup": procPidCgroup(data)
        case "proc-pid-limits": _ = try? ProcPidLimits.softOpenFiles(data)
        case "fd-link": fdLink(data)
        case "time-span": timeSpan(data)
        case "config": config(data)
        case "state-document": stateDocument(data)
        case "escape": escape(data)
        case "http-request": httpRequest(data)
        case "listen-address": listenAddress(data)
        case "runtime-state": runtimeState(data)
        default: return false
        }
        return true
    }

    /// A container runtime's state file (Docker's config.v2.json, an OCI config.json,
    /// containers/storage's list): names within the size cap, shown without a raw control.
    static func runtimeState(_ data: [UInt8]) {
        var names = [ContainerNames]()
        if let n = try? OCIConfig.names(data) { names.append(n) }
        if let n = try? DockerConfigV2.names(data) { names.append(n) }
        if let list = try? StorageContainers.names(data) { names += list.values.map { ContainerNames(name: $0) } }
        for n in names {
            for value in [n.name, n.podName, n.podNamespace, n.podUID, n.composeProject, n.composeService] {
                guard let value else { continue }
                check(!value.isEmpty && value.count <= ContainerNames.maximumBytes, "a name of \(value.count) bytes")
            }
            var c = ContainerIdentity(runtime: .containerd, id: ByteString(String(repeating: "a", count: 64)))
            c.adopt(n)
            check(!containsRawControl(c.described) && !containsRawControl(c.cell), "raw control in a container name")
        }
    }

    static func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { fatalError("fuzz property violated: \(what())") }
    }

    /// Any bytes a client sends: a decision that stays within the limits, a request only for a
    /// well-formed head, and a response that is one HTTP/1.1 head with a matching length.
    static func httpRequest(_ data: [UInt8]) {
        let parsed = HTTPExchange.parse(data)
        switch parsed {
        case .incomplete:
            check(data.count <= HTTPExchange.maxHeadBytes, "incomplete after \(data.count) bytes")
        case let .request(method, path):
            check(!method.isEmpty && method.utf8.allSatisfy { (0x41...0x5a).contains($0) }, "method \(method)")
            check(
                path.hasPrefix("/") && !path.contains("?") && path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f },
                "path \(path)")
        case let .reject(status):
            check([400, 431, 505].contains(status), "status \(status)")
        }
        let body: [UInt8] = Array("x 1\n".utf8)
        let response = HTTPExchange.response(to: parsed, page: { body })
        guard let end = response.indices.first(where: { response[$0...].starts(with: [13, 10, 13, 10]) }) else {
            return check(false, "no end of head")
        }
        let head = String(decoding: response[..<end], as: UTF8.self)
        check(head.hasPrefix("HTTP/1.1 ") && head.contains("\r\nConnection: close"), "head \(head)")
        let rest = response.count - end - 4
        check(
            head.contains("Content-Length: \(rest)\r\n") || (rest == 0 && head.contains("Content-Length: ")),
            "length \(rest) in \(head)")
    }

    /// A parsed listen address prints as text that parses back to the same address.
    static func listenAddress(_ data: [UInt8]) {
        guard let text = String(validating: data, as: UTF8.self), let address = ListenAddress(text) else { return }
        check(address.address.count == 4 || address.address.count == 16, "\(address.address.count) bytes")
        check(address.port > 0, "port 0")
        check(ListenAddress(address.description) == address, "\(text) → \(address) does not parse back")
    }

    static func inetDiag(_ data: [UInt8]) {
        guard let batch = try? InetDiag.parse(data) else { return }
        for record in batch.records { check(record.state.rawValue <= 12, "state \(record.state.rawValue)") }
    }

    static func procNetTCP(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? ProcNetTCP.parse(text, family: .inet, states: Set(TCPState.allCases))
        _ = try? ProcNetTCP.parse(text, family: .inet6, states: [.closeWait])
    }

    /// Any comm parses back to exactly its bytes, and its escaped form is control-free.
    static func procPidStat(_ data: [UInt8]) {
        if let stat = try? ProcPidStat.parse(data) {
            check(!containsRawControl(stat.comm.escaped), "raw control in an escaped comm")
        }
        let comm = data.filter { $0 != 0 }.prefix(64)
        let line = Array("42 (".utf8) + comm + Array(") S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n".utf8)
        guard let stat = try? ProcPidStat.parse(line) else {
            return check(false, "a stat line with comm \(Array(comm)) did not parse")
        }
        check(stat.comm.bytes == Array(comm) && stat.startTime == 777 && stat.pid == 42, "comm or fields changed")
    }

    static func procPidCgroup(_ data: [UInt8]) {
        if let unit = ProcPidCgroup.unit(data) {
            check(!containsRawControl(unit.escaped), "raw control in an escaped unit")
        }
        if let container = ContainerIdentity.fromCgroup(data) {
            check(!containsRawControl(container.label), "raw control in a container label")
            check(!container.id.isEmpty, "a container without an id")
        }
    }

    static func fdLink(_ data: [UInt8]) {
        let inode = data.withUnsafeBytes { FdLink.socketInode($0) }
        guard let inode else { return }
        // socket:[DIGITS] whose digits spell the inode (leading zeros allowed).
        let digits = data.dropFirst(8).dropLast()
        check(
            data.starts(with: Array("socket:[".utf8)) && data.last == UInt8(ascii: "]") && !digits.isEmpty
                && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
                && UInt64(String(decoding: digits, as: UTF8.self)) == inode, "inode \(inode) from \(Escape.bytes(data))"
        )
    }

    static func timeSpan(_ data: [UInt8]) {
        let text = String(decoding: data.prefix(256), as: UTF8.self)
        if let seconds = TimeSpan.parse(text) { check(seconds.isFinite && seconds >= 0, "span \(seconds)") }
        let value = data.count >= 8 ? Double(bitPattern: data.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) : 0
        _ = TimeSpan.format(value)
        _ = AlertMessage.fixed(value, 1)
    }

    /// Any config text is either Settings within range or problems that name the file.
    static func config(_ data: [UInt8]) {
        switch ConfigLoader.parse(data, file: "fuzz.toml") {
        case let .success(settings):
            check(settings.interval >= 0.1 && settings.interval <= 3600, "interval \(settings.interval)")
            check(settings.window >= settings.interval * 2, "window below twice the interval")
        case let .failure(errors):
            check(!errors.problems.isEmpty, "a failure without a problem")
            for problem in errors.problems {
                check(problem.description.hasPrefix("fuzz.toml"), "a problem not naming the file")
                check(!containsRawControl(problem.description), "raw control in \(problem.description)")
            }
        }
    }

    static func stateDocument(_ data: [UInt8]) {
        guard let document = try? StateDocument.decode(data) else { return }
        let rendered = document.json().renderedBytes()
        guard let again = try? StateDocument.decode(rendered) else {
            return check(false, "a rendered state did not decode")
        }
        check(again == document, "state round trip changed the document")
        _ = StateDocument.table(document, age: 0)
    }

    static func escape(_ data: [UInt8]) {
        let escaped = Escape.bytes(data)
        check(!containsRawControl(escaped), "raw control after Escape.bytes")
        check(
            !Escape.line(String(decoding: data, as: UTF8.self), limit: 256).unicodeScalars.contains {
                Escape.needsEscape($0)
            },
            "raw control after Escape.line")
        check(Glob.matches("*", ByteString(data)), "* does not match everything")
    }

    static func containsRawControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { Escape.needsEscape($0) }
    }
}
