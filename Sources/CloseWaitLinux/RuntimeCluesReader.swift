import CloseWaitCore
import Glibc

/// RuntimeCluesReader reads what a looked-at process shows of its client library, bounded: its
/// executable's name; for a JVM (`java`) the names of the `.jar` files among its first
/// `maxFds` fds (readlink of /proc/PID/fd/N, kernel data only) and its first `maxThreads`
/// threads' names (/proc/PID/task/TID/comm); for anything but a JVM, Python or Node the Go
/// version in its executable's `.go.buildinfo` (a few bounded preads, and only when
/// /proc/PID/mountinfo says the executable lives on a local filesystem: a read from a FUSE or
/// network mount could block the tick). Every failure leaves that clue out.
public struct RuntimeCluesReader: Sendable {
    public var proc: ProcFS
    public var maxFds = 4096
    public var maxThreads = 256
    public var maxJars = 64
    /// Filesystems whose reads never wait for another process or the network.
    public static let localFilesystems: Set<String> = [
        "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "squashfs", "zfs", "f2fs", "vfat", "erofs",
    ]

    public init(proc: ProcFS = ProcFS()) {
        self.proc = proc
    }

    public func clues(pid: Int32) -> RuntimeClues {
        var clues = RuntimeClues()
        let base = String(pid)
        let exe = try? proc.readLink(base + "/exe")
        clues.executable = exe.map { ByteString(Array($0.split(separator: 0x2f).last ?? [])) }
        // Each runtime shows itself one way: a JVM by its jars and threads, Python and Node by
        // their executable, anything else may be a Go binary. A look reads only what applies.
        switch clues.runtime {
        case .python, .node:
            return clues
        case .other:
            if let exe, onLocalFilesystem(pid: pid, path: exe) { clues.goVersion = goVersion(pid: pid) }
            return clues
        case .jvm:
            break
        }
        clues.jars = names(in: base + "/fd", limit: maxFds) { fd in
            guard let link = try? proc.readLink(base + "/fd/" + fd), link.count > 4,
                Array(link.suffix(4)) == Array(".jar".utf8)
            else { return nil }
            return ByteString(Array(link.split(separator: 0x2f).last ?? []))
        }
        clues.jars = Array(Set(clues.jars.map(\.bytes)).sorted { $0.lexicographicallyPrecedes($1) }.prefix(maxJars))
            .map { ByteString($0) }
        clues.threads = names(in: base + "/task", limit: maxThreads) { tid in
            (try? proc.read(base + "/task/" + tid + "/comm", limit: 64)).map {
                ByteString(Array($0.prefix { $0 != 0x0a }))
            }
        }
        return clues
    }

    /// `transform` of each entry of a /proc directory, at most `limit` entries.
    func names(in relative: String, limit: Int, _ transform: (String) -> ByteString?) -> [ByteString] {
        let path = proc.root + "/" + relative
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out = [ByteString]()
        var seen = 0
        while seen < limit, let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.first?.isNumber == true else { continue }
            seen += 1
            if let value = transform(name) { out.append(value) }
        }
        return out
    }

    /// Whether the executable's mount (the longest mount point that prefixes its path, in the
    /// process's own mount namespace) is a local filesystem.
    func onLocalFilesystem(pid: Int32, path: [UInt8]) -> Bool {
        guard let text = try? proc.read(String(pid) + "/mountinfo", limit: 1 << 20) else { return false }
        var best: (length: Int, type: String)?
        for line in text.split(separator: 0x0a) {
            let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
            guard fields.count > 7, let dash = fields.firstIndex(where: { $0.elementsEqual("-".utf8) }),
                dash + 1 < fields.count
            else { continue }
            let mountPoint = Array(fields[4])
            let prefix = mountPoint == [0x2f] ? true : path.starts(with: mountPoint + [0x2f]) || path == mountPoint
            guard prefix, mountPoint.count >= best?.length ?? -1 else { continue }
            best = (mountPoint.count, String(decoding: fields[dash + 1], as: UTF8.self))
        }
        return best.map { Self.localFilesystems.contains($0.type) } ?? false
    }

    /// The Go version from the executable's `.go.buildinfo`; at most five preads, each
    /// bounded.
    func goVersion(pid: Int32) -> String? {
        let path = proc.root + "/" + String(pid) + "/exe"
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        func at(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count > 0, count <= 1 << 16, offset < UInt64(Int64.max) else { return nil }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buffer : nil
        }
        guard let header = at(0, 64), let table = ElfGoBuildInfo.sectionTable(header: header),
            table.count <= 512, let sections = at(table.offset, table.count * table.entrySize),
            let namesSection = ElfGoBuildInfo.section(sections, entrySize: table.entrySize, index: table.names),
            let names = at(namesSection.offset, Int(min(namesSection.size, 1 << 16)))
        else { return nil }
        for index in 0..<table.count {
            guard let s = ElfGoBuildInfo.section(sections, entrySize: table.entrySize, index: index),
                ElfGoBuildInfo.name(names, at: s.name) == Array(".go.buildinfo".utf8)
            else { continue }
            return at(s.offset, Int(min(s.size, 4096))).flatMap(ElfGoBuildInfo.version)
        }
        return nil
    }
}
