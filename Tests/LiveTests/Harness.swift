import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Where the built executables are: next to the test bundle (`.build/debug`), unless
/// CLOSEWAITD_BIN_DIR says otherwise.
enum Build {
    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["CLOSEWAITD_BIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The bundle may be a directory (…/closewaitdPackageTests.xctest/…).
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
        return dir.path
    }

    static func path(_ name: String) -> String { binDirectory + "/" + name }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command to completion with a deadline, returning its exit status and output.
func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
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
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Polls `condition` until it holds or the deadline passes.
func waitFor(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return }
        usleep(50_000)
    }
    throw TimedOut(description: "waited \(timeout) s for \(what)")
}

/// A running `closewaitd-workload`: real CLOSE_WAIT sockets held by child processes.
final class Workload {
    struct Socket: Hashable {
        var pid: Int32
        var fd: Int32
        var inode: UInt64
        var kind: String
    }

    let process = Process()
    let manifestPath: String
    private(set) var ready: [String: Any] = [:]

    var coordinator: Int32 { process.processIdentifier }
    var holders: [Int32] { (ready["holders"] as? [Int] ?? []).map(Int32.init) }
    var sharers: [Int32] { (ready["sharers"] as? [Int] ?? []).map(Int32.init) }
    var port4: Int { ready["port4"] as? Int ?? 0 }
    var port6: Int { ready["port6"] as? Int ?? 0 }
    var backlogPort: Int { ready["backlogPort"] as? Int ?? 0 }

    init(_ arguments: [String], timeout: Double = 30) throws {
        manifestPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("closewaitd-manifest-\(UUID().uuidString)").path
        process.executableURL = URL(fileURLWithPath: Build.path("closewaitd-workload"))
        process.arguments = arguments + ["--manifest", manifestPath, "--duration", "300"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Read the ready line with a deadline (poll, no guessed sleep).
        let fd = out.fileHandleForReading.fileDescriptor
        var line = [UInt8]()
        let end = Date().addingTimeInterval(timeout)
        while !line.contains(0x0a) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, end.timeIntervalSinceNow * 1000))
            guard Date() < end, poll(&entry, 1, left) == 1 else {
                stop()
                throw TimedOut(description: "workload \(arguments) not ready within \(timeout) s")
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { stop(); throw TimedOut(description: "workload exited before ready") }
            line += chunk[0..<n]
        }
        let first = line.split(separator: 0x0a).first ?? []
        ready = try JSONSerialization.jsonObject(with: Data(first)) as? [String: Any] ?? [:]
    }

    /// The manifest: one entry per (holder pid, socket).
    func manifest() throws -> [Socket] {
        try String(contentsOfFile: manifestPath, encoding: .utf8).split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 4, let pid = Int32(f[0]), let fd = Int32(f[1]), let inode = UInt64(f[2]) else { return nil }
            return Socket(pid: pid, fd: fd, inode: inode, kind: String(f[3]))
        }
    }

    /// Ends the workload by pid: SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() {
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
