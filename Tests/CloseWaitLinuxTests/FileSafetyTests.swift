import CloseWaitLinux
import Foundation
import Testing
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// Files the daemon writes and reads where others may have planted something (issue 8,
/// rows 7 and 8).
@Suite struct FileSafetyTests {
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cw-files-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A symlink planted where the old code put its temporary file, and one at a guessable
    /// name, are never written through; the state still lands.
    @Test func atomicWriteNeverFollowsAPlantedSymlink() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let state = dir + "/state.json"
        #expect(symlink(victim, state + ".tmp") == 0)
        #expect(symlink(victim, dir + "/.state.json.tmp") == 0)
        try writeFileAtomically(state, Array("{\"ok\":1}\n".utf8))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(try String(contentsOfFile: state, encoding: .utf8) == "{\"ok\":1}\n")
        // No temporary file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
            $0.hasSuffix(".tmp") && $0.hasPrefix(".state.json.") && $0 != ".state.json.tmp"
        }
        #expect(left.isEmpty)
        // The state path itself a symlink: replaced, not followed.
        try FileManager.default.removeItem(atPath: state)
        #expect(symlink(victim, state) == 0)
        try writeFileAtomically(state, Array("{\"ok\":2}\n".utf8))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(try FileManager.default.attributesOfItem(atPath: state)[.type] as? FileAttributeType == .typeRegular)
    }

    @Test func readingAFIFOOrADeviceIsRefusedAtOnce() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FileReadError.notRegular(path: fifo, kind: "a FIFO")) { try readRegularFile(fifo, limit: 100) }
        #expect(throws: FileReadError.notRegular(path: "/dev/zero", kind: "a character device")) {
            try readRegularFile("/dev/zero", limit: 100)
        }
        let file = dir + "/f"
        try String(repeating: "x", count: 100).write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try readRegularFile(file, limit: 100).count == 100)
        #expect(throws: FileReadError.tooLarge(path: file, limit: 99)) { try readRegularFile(file, limit: 99) }
    }

    /// /proc files that report size 0 but hold more than a small limit are cut, not grown.
    @Test func procReadsStopAtTheirLimit() throws {
        let proc = ProcFS()
        #expect(try proc.read("self/maps", limit: 10).count == 10)
        #expect(try proc.read("self/stat").count > 10)
    }
}
