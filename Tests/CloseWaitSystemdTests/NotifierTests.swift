import CloseWaitCore
@testable import CloseWaitSystemd
import Foundation
import Testing

/// The sd_notify sender against real AF_UNIX datagram sockets (issue 8, rows 3 and 6).
@Suite struct NotifierTests {
    /// A bound datagram socket, read only when the test asks.
    final class Receiver {
        let fd: Int32
        let name: String
        init(abstract: Bool) {
            name =
                (abstract ? "@" : FileManager.default.temporaryDirectory.path + "/")
                + "cw-notify-test-\(UUID().uuidString.prefix(8))"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(name.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in bytes.enumerated() { raw[i] = i == 0 && abstract ? 0 : byte }
            }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            precondition(result == 0, "bind \(name): \(errno)")
        }
        func receive() -> [String] {
            var out = [String]()
            var buffer = [UInt8](repeating: 0, count: 8192)
            while true {
                let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                guard n > 0 else { return out }
                out.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
        deinit {
            close(fd)
            if !name.hasPrefix("@") { unlink(name) }
        }
    }

    @Test func sendsToPathAndAbstractSockets() {
        for abstract in [false, true] {
            let receiver = Receiver(abstract: abstract)
            let notifier = Notifier(environment: receiver.name)
            #expect(notifier.isSupervised)
            notifier.ready(status: "watching")
            #expect(receiver.receive() == ["READY=1\nSTATUS=watching"])
        }
        #expect(!Notifier(environment: nil).isSupervised)
        #expect(!Notifier(environment: "relative/path").isSupervised)
    }

    /// A comm that tries to forge STOPPING=1 on a line of its own stays inside STATUS.
    @Test func statusCannotCarryANewAssignment() {
        let receiver = Receiver(abstract: false)
        let notifier = Notifier(environment: receiver.name)
        let comm = ByteString("\rSTOPPING=1\r")
        notifier.status("1 process with CLOSE_WAIT, 1 alerting; max \(comm.escaped)[7] 600; total 600\nSTOPPING=1")
        let messages = receiver.receive()
        #expect(messages.count == 1)
        let lines = messages[0].split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        #expect(lines.count == 1)
        #expect(lines.allSatisfy { $0.hasPrefix("STATUS=") })
        #expect(Notifier.status(String(repeating: "x", count: 5000)).utf8.count <= Notifier.statusLimit)
    }

    /// A manager that never reads: the sender drops and counts instead of blocking, and the
    /// important messages wait a bounded time.
    @Test func aFullSocketNeverBlocks() {
        let receiver = Receiver(abstract: false)
        let notifier = Notifier(environment: receiver.name)
        notifier.importantWait = 0.2
        let start = Date()
        for i in 0..<500 { notifier.status("tick \(i)") }
        notifier.stopping()
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < 5, "took \(elapsed) s")
        #expect(notifier.dropped > 0)
        #expect(notifier.dropped < 501)
        let received = receiver.receive()
        #expect(received.count + notifier.dropped == 501)
        // Once the manager reads again, messages go through.
        notifier.status("again")
        #expect(receiver.receive() == ["STATUS=again"])
    }
}
