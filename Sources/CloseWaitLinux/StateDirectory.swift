import CloseWaitCore
import Glibc

/// StateDirectory reads files below a directory someone else writes (a container runtime's
/// state, a container's own root): the root the admin named is opened as given, every
/// component below it with O_NOFOLLOW, so a symlink planted inside never leads out; the file
/// must be a regular file no larger than the limit (opened non-blocking: a FIFO cannot hang
/// the tick).
public struct StateDirectory: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Not there (the runtime does not run here, the container is gone): not a problem.
        case missing
        /// A symlink where a directory or the file should be: refused.
        case symlink(String)
        case notRegular(String)
        case tooLarge(String, limit: Int)
        case system(Errno)

        public var description: String {
            switch self {
            case .missing: "not found"
            case let .symlink(path): "\(path) is a symlink; not followed"
            case let .notRegular(path): "\(path) is not a regular file"
            case let .tooLarge(path, limit): "\(path) is larger than \(limit / 1024) KiB; not read"
            case let .system(error): error.description
            }
        }
    }

    public var root: String

    public init(_ root: String) {
        self.root = root
    }

    /// A name that is one path component: not empty, no slash, not `.` or `..`.
    static func isComponent(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/"))
            && !name.utf8.contains(0)
    }

    /// The directory `components` below the root, opened to read (the caller closes it).
    func openDirectory(_ components: ArraySlice<String>) throws(Failure) -> Int32 {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure(errno, "open", root) }
        var path = root
        for name in components {
            guard Self.isComponent(name) else { close(fd); throw .missing }
            path += "/" + name
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: say what it is.
            var info = stat()
            let link =
                next < 0 && code == ENOTDIR && fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
                && info.st_mode & S_IFMT == S_IFLNK
            close(fd)
            if link { throw .symlink(path) }
            guard next >= 0 else { throw Self.failure(code, "openat", path) }
            fd = next
        }
        return fd
    }

    /// The file at `components` below the root, read whole (at most `limit` bytes).
    public func read(_ components: [String], limit: Int) throws(Failure) -> [UInt8] {
        guard let name = components.last, Self.isComponent(name) else { throw .missing }
        let dir = try openDirectory(components.dropLast())
        defer { close(dir) }
        let path = ([root] + components).joined(separator: "/")
        let fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure(errno, "openat", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(Errno(errno, call: "fstat", path: path)) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegular(path) }
        guard info.st_size <= limit else { throw .tooLarge(path, limit: limit) }
        var buffer = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var used = 0
        while used < buffer.count {
            let n = buffer.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress! + used, raw.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system(Errno(errno, call: "read", path: path))
            }
            if n == 0 { break }
            used += n
            // It grew while read: take up to the limit, no more.
            if used == buffer.count && used <= limit {
                buffer += [UInt8](repeating: 0, count: min(4096, limit + 1 - used))
            }
        }
        guard used <= limit else { throw .tooLarge(path, limit: limit) }
        return Array(buffer[..<used])
    }

    /// The names in the directory `components` below the root (no `.`, `..`), at most `limit`.
    public func list(_ components: [String], limit: Int) throws(Failure) -> [String] {
        let fd = try openDirectory(components[...])
        guard let dir = fdopendir(fd) else {
            let code = errno
            close(fd)
            throw Self.failure(code, "fdopendir", ([root] + components).joined(separator: "/"))
        }
        defer { closedir(dir) }
        var names = [String]()
        while names.count < limit, let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func failure(_ code: Int32, _ call: String, _ path: String) -> Failure {
        switch code {
        case ENOENT, ENOTDIR, ESRCH: .missing
        case ELOOP: .symlink(path)
        default: .system(Errno(code, call: call, path: path))
        }
    }
}
