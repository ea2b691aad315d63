import ArgumentParser
import CBPFScanner
import Glibc

/// The eBPF scanner's loader, run by the daemon (and `snapshot`) as a process of its own: it
/// loads and attaches the programs and hands their file descriptors back over fd 3, then
/// exits, so that libbpf's relocation against the kernel's BTF (~12 MiB at its peak) is never
/// part of the daemon's memory. Not for people: hidden from --help.
struct BPFLoaderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bpf-loader", abstract: "Load the eBPF programs and hand them to the daemon (internal).",
        shouldDisplay: false)

    @Option(help: "Bit (1 << TCP state) of each state the iterator reports.") var states: UInt32

    @Flag(help: "Also load a program the verifier must refuse (tests).") var reject = false

    func run() throws {
        // fd 3 must be the daemon's socket: a person running this by hand gets a clear no.
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_SEQPACKET.rawValue) else {
            printError("closewaitd bpf-loader: run by the daemon only (fd 3 is not its socket)")
            throw ExitCode(64)
        }
        throw ExitCode(cw_helper_main(3, states, reject ? 1 : 0))
    }
}
