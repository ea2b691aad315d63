import Foundation
#if canImport(Glibc)
    @preconcurrency import Glibc
#endif

/// A listening TCP socket on 127.0.0.1 (`port` 0: an ephemeral one) and the port it got.
/// Not close-on-exec: a test may pass it to a child (socket activation).
public func loopbackListener(port: UInt16 = 0, backlog: Int32 = 64) throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = port.bigEndian
    sa.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && listen(fd, backlog) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard fd >= 0, ok else {
        let code = errno
        if fd >= 0 { close(fd) }
        throw TimedOut(description: "cannot listen on 127.0.0.1:\(port): errno \(code)")
    }
    return (fd, UInt16(bigEndian: sa.sin_port))
}

/// A loopback port nothing listens on now (bound, read, closed).
public func freeLoopbackPort() -> UInt16 {
    guard let (fd, port) = try? loopbackListener() else { return 0 }
    close(fd)
    return port
}

/// A plain TCP client on loopback for the /metrics endpoint (no HTTP library: the tests must
/// also send what no library would).
public struct LoopbackClient {
    public let fd: Int32

    public init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno; Glibc.close(fd); throw TimedOut(description: "connect 127.0.0.1:\(port): errno \(e)")
        }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends as much of `bytes` as the peer takes; the count sent.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Int {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    /// Reads until the peer closes (or reset / 20 s timeout).
    public func readToEnd() -> [UInt8] {
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    public func close() { Glibc.close(fd) }

    /// One request, the whole response as text.
    public static func get(port: UInt16, _ path: String = "/metrics") throws -> String {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        return String(decoding: client.readToEnd(), as: UTF8.self)
    }
}
