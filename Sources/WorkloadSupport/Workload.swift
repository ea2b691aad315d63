import Foundation
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Shared by the live tests and the benchmark: running the built executables and the
/// loopback workload.

/// Where the built executables are: next to the test bundle or the benchmark (`.build/debug`), unless
/// CLOSEWAITD_BIN_DIR says otherwise.
public enum Build {
    public static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["CLOSEWAITD_BIN_DIR"] { return dir }
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The bundle may be a directory (…/closewaitdPackageTests.xctest/…).
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
        return dir.path
    }

    public static func path(_ name: String) -> String { binDirectory + "/" + name }
}

public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs a command to completion with a deadline, returning its exit status and output.
public func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes while the process runs so a large output cannot block it.
    nonisolated(unsafe) var outData = Data(), errData = Data()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw TimedOut(description: "\(executable) \(arguments) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}

/// The next line (without its newline) from `fd`, within `timeout` seconds: bytes already read
/// past it stay in `buffer` for the next call.
public func readLine(_ fd: Int32, buffer: inout [UInt8], timeout: Double) throws -> [UInt8] {
    let end = Date().addingTimeInterval(timeout)
    while !buffer.contains(0x0a) {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Date() < end, poll(&entry, 1, Int32(max(1, end.timeIntervalSinceNow * 1000))) == 1 else {
            throw TimedOut(description: "no line within \(timeout) s")
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &chunk, chunk.count)
        guard n > 0 else { throw TimedOut(description: "it exited before writing a line") }
        buffer += chunk[0..<n]
    }
    let line = Array(buffer.prefix { $0 != 0x0a })
    buffer.removeFirst(line.count + 1)
    return line
}

/// Polls `condition` until it holds or the deadline passes.
public func waitFor(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return }
        usleep(50_000)
    }
    throw TimedOut(description: "waited \(timeout) s for \(what)")
}

/// A running `closewaitd-workload`: real CLOSE_WAIT sockets held by child processes.
public final class Workload {
    public struct Socket: Hashable {
        public var pid: Int32
        public var fd: Int32
        public var inode: UInt64
        public var kind: String
    }

    public let process = Process()
    public let manifestPath: String
    public private(set) var ready: [String: Any] = [:]

    public var coordinator: Int32 { process.processIdentifier }
    public var holders: [Int32] { (ready["holders"] as? [Int] ?? []).map(Int32.init) }
    public var sharers: [Int32] { (ready["sharers"] as? [Int] ?? []).map(Int32.init) }
    public var port4: Int { ready["port4"] as? Int ?? 0 }
    public var port6: Int { ready["port6"] as? Int ?? 0 }
    public var backlogPort: Int { ready["backlogPort"] as? Int ?? 0 }

    /// - Parameter launcher: a command that execs the workload (e.g. `unshare --net` and a
    ///   shell that brings `lo` up), so it runs in another namespace; it must exec, so the
    ///   process started here is the workload's coordinator.
    /// - Parameter executable: a copy of the workload binary to run instead (its own exe path
    ///   and comm, for a test whose rules must match only its own processes).
    public init(
        _ arguments: [String], timeout: Double = 30, duration: Int = 300, launcher: [String] = [],
        executable: String? = nil
    ) throws {
        let binary = executable ?? Build.path("closewaitd-workload")
        manifestPath =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("closewaitd-manifest-\(UUID().uuidString)").path
        let workloadArguments = arguments + ["--manifest", manifestPath, "--duration", String(duration)]
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [binary] + workloadArguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = workloadArguments
        }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Read the ready line with a deadline (poll, no guessed sleep).
        var pending = [UInt8]()
        do {
            let first = try readLine(out.fileHandleForReading.fileDescriptor, buffer: &pending, timeout: timeout)
            ready = try JSONSerialization.jsonObject(with: Data(first)) as? [String: Any] ?? [:]
        } catch {
            stop()
            throw TimedOut(description: "workload \(arguments) not ready: \(error)")
        }
    }

    /// The manifest: one entry per (holder pid, socket), less the holders that exited
    /// (churn writes `X pid`) and the sockets a rotating pool closed (`D pid inode`).
    public func manifest() throws -> [Socket] {
        var sockets = [Socket]()
        for line in try String(contentsOfFile: manifestPath, encoding: .utf8).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, f[0] == "X", let pid = Int32(f[1]) {
                sockets.removeAll { $0.pid == pid }
                continue
            }
            if f.count == 3, f[0] == "D", let pid = Int32(f[1]), let inode = UInt64(f[2]) {
                sockets.removeAll { $0.pid == pid && $0.inode == inode }
                continue
            }
            guard f.count == 4, let pid = Int32(f[0]), let fd = Int32(f[1]), let inode = UInt64(f[2]) else { continue }
            sockets.append(Socket(pid: pid, fd: fd, inode: inode, kind: String(f[3])))
        }
        return sockets
    }

    /// Every holder pid the manifest ever named, including holders churn has ended since.
    public func everyHolder() -> Set<Int32> {
        let text = (try? String(contentsOfFile: manifestPath, encoding: .utf8)) ?? ""
        var pids = Set<Int32>(holders)
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let first = f.first, let pid = Int32(first) { pids.insert(pid) }
            if f.count >= 2, f[0] == "X" || f[0] == "D", let pid = Int32(f[1]) { pids.insert(pid) }
        }
        return pids
    }

    /// The manifest as inode -> holder pids.
    public func owners() throws -> [UInt64: Set<Int32>] {
        var owners = [UInt64: Set<Int32>]()
        for socket in try manifest() { owners[socket.inode, default: []].insert(socket.pid) }
        return owners
    }

    /// Ends the workload by pid: SIGTERM, then SIGKILL if it has not exited within 10 s.
    public func stop() {
        guard process.isRunning else { return }
        kill(coordinator, SIGTERM)
        if (try? waitFor("workload exit", timeout: 10, { !process.isRunning })) == nil {
            kill(coordinator, SIGKILL)
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: manifestPath)
    }

    deinit { stop() }
}
