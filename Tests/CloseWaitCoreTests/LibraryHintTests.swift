@testable import CloseWaitCore
import Testing

/// Issue 19: the client library a process shows, and that library's fix, as a labelled hint.
@Suite struct LibraryHintTests {
    @Test(arguments: [
        (
            ["commons-logging-1.2.jar", "httpclient-4.5.14.jar", "httpcore-4.4.16.jar"], "Apache HttpClient 4.x",
            "EntityUtils.consume"
        ),
        (["httpclient5-5.2.1.jar", "httpcore5-5.2.jar"], "Apache HttpClient 5.x", "ClassicHttpResponse"),
        (["okhttp-4.12.0.jar", "okio-3.6.0.jar"], "OkHttp", "response.close()"),
        (["commons-httpclient-3.1.jar"], "commons-httpclient 3.x", "closeIdleConnections"),
        // As Debian installs them: no version in the name.
        (["commons-codec.jar", "httpclient.jar", "httpcore.jar"], "Apache HttpClient 4.x", "EntityUtils.consume"),
        (["jetty-client-9.4.53.jar"], "Jetty HttpClient", "setIdleTimeout"),
        (["netty-all-4.1.100.jar"], "Netty", "IdleStateHandler"),
    ])
    func aJVMsOpenJarsNameItsClient(jars: [String], library: String, fix: String) throws {
        let hint = try #require(
            LibraryHint.from(RuntimeClues(jars: jars.map { ByteString($0) }), kind: .abandonedConnections))
        #expect(hint.library == library)
        #expect(hint.fix.contains(fix), "\(hint.fix)")
        #expect(hint.sentence.hasPrefix("Hint: \(library) ("))
    }

    @Test func anIdlePoolGetsTheEvictionCall() {
        let hint = LibraryHint.from(RuntimeClues(jars: ["httpclient-4.5.14.jar"]), kind: .idlePool)
        #expect(hint?.fix.contains("evictIdleConnections") == true)
    }

    @Test func threadsGoAndExecutablesNameTheRest() {
        #expect(
            LibraryHint.from(RuntimeClues(threads: ["main", "HttpClient-1-Sel"]), kind: .abandonedConnections)?.library
                == "the JDK's java.net.http.HttpClient")
        let go = LibraryHint.from(RuntimeClues(goVersion: "go1.19.8", executable: "goclient"), kind: .unreadResponses)
        #expect(go?.library == "Go net/http (go1.19.8)" && go?.fix.contains("resp.Body.Close()") == true)
        #expect(
            LibraryHint.from(RuntimeClues(executable: "python3.11"), kind: .abandonedConnections)?.fix
                .contains("session.close()") == true)
        #expect(
            LibraryHint.from(RuntimeClues(executable: "node"), kind: .abandonedConnections)?.fix.contains(
                "agent.destroy()") == true)
        #expect(LibraryHint.from(RuntimeClues(executable: "nginx"), kind: .abandonedConnections) == nil)
    }

    @Test func aHostileJarNameIsEscaped() {
        let hint = LibraryHint.from(
            RuntimeClues(jars: [ByteString("httpclient-\u{1b}[2J\n.jar")]), kind: .unreadResponses)
        #expect(hint?.seen.contains("\u{1b}") == false && hint?.seen.contains("\n") == false)
    }

    @Test func theClassifierCarriesTheHint() {
        var e = FlowDiagnosisTests.evidence()
        e.clues = RuntimeClues(jars: ["httpclient-4.5.14.jar"])
        #expect(Diagnosis.classify(e).hint?.library == "Apache HttpClient 4.x")
    }

    /// A minimal ELF64 with a section-name table and a `.go.buildinfo` holding go1.19.8.
    static func elf(version: String, flags: UInt8 = 2) -> [UInt8] {
        func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        let names: [UInt8] = [0] + Array(".shstrtab".utf8) + [0] + Array(".go.buildinfo".utf8) + [0]
        var info: [UInt8] = [0xff] + Array(" Go buildinf:".utf8) + [8, flags]
        info += [UInt8](repeating: 0, count: 32 - info.count) + [UInt8(version.utf8.count)] + Array(version.utf8)
        let namesAt: UInt64 = 64, infoAt = namesAt + UInt64(names.count), tableAt = infoAt + UInt64(info.count)
        var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1] + [UInt8](repeating: 0, count: 9)
        header += le(2, 2) + le(62, 2) + le(1, 4) + le(0, 8) + le(0, 8) + le(tableAt, 8) + le(0, 4)
        header += le(64, 2) + le(0, 2) + le(0, 2) + le(64, 2) + le(3, 2) + le(1, 2)
        func section(_ name: UInt32, _ offset: UInt64, _ size: Int) -> [UInt8] {
            le(UInt64(name), 4) + le(0, 4) + le(0, 8) + le(0, 8) + le(offset, 8) + le(UInt64(size), 8)
                + [UInt8](repeating: 0, count: 24)
        }
        let table =
            [UInt8](repeating: 0, count: 64) + section(1, namesAt, names.count) + section(11, infoAt, info.count)
        return header + names + info + table
    }

    @Test func theGoVersionIsReadFromBuildInfoWithEveryOffsetChecked() throws {
        let file = Self.elf(version: "go1.19.8")
        let table = try #require(ElfGoBuildInfo.sectionTable(header: Array(file.prefix(64))))
        let sections = Array(file[Int(table.offset)...])
        let names = try #require(ElfGoBuildInfo.section(sections, entrySize: table.entrySize, index: table.names))
        let nameBytes = Array(file[Int(names.offset)..<Int(names.offset + names.size)])
        let info = try #require(ElfGoBuildInfo.section(sections, entrySize: table.entrySize, index: 2))
        #expect(ElfGoBuildInfo.name(nameBytes, at: info.name) == Array(".go.buildinfo".utf8))
        #expect(ElfGoBuildInfo.version(Array(file[Int(info.offset)..<Int(info.offset + info.size)])) == "go1.19.8")
        // Pre-1.18 pointer form, a hostile length, junk: nothing.
        #expect(ElfGoBuildInfo.version(Array(Self.elf(version: "go1.17", flags: 0)[89...])) == nil)
        #expect(
            ElfGoBuildInfo.version(
                [0xff] + Array(" Go buildinf:".utf8) + [8, 2] + [UInt8](repeating: 0, count: 16) + [200]) == nil)
        #expect(ElfGoBuildInfo.sectionTable(header: [UInt8](repeating: 0x7f, count: 64)) == nil)
        #expect(ElfGoBuildInfo.section([1, 2, 3], entrySize: 64, index: 5) == nil)
        #expect(ElfGoBuildInfo.name([0x2e, 0x61], at: 0) == nil)
    }
}
