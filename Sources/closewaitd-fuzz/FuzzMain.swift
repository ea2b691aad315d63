import CFuzzShim
import CloseWaitFuzz
@preconcurrency import Glibc

// Built with `-sanitize=fuzzer -D FUZZING` (make fuzz), this is a libFuzzer binary: the
// target comes from CLOSEWAITD_FUZZ_TARGET and the arguments are libFuzzer's. Built normally,
// it replays files through a target: `closewaitd-fuzz TARGET FILE...`.

nonisolated(unsafe) private var selected = ""

private func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(selected, bytes)
    return 0
}

@main
struct FuzzMain {
    static func main() {
        #if FUZZING
            guard let name = getenv("CLOSEWAITD_FUZZ_TARGET").map({ String(cString: $0) }),
                FuzzTargets.names.contains(name)
            else {
                fputs("set CLOSEWAITD_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: " "))\n", stderr)
                exit(2)
            }
            selected = name
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
            let arguments = CommandLine.arguments
            guard arguments.count >= 2, FuzzTargets.names.contains(arguments[1]) else {
                fputs(
                    "usage: closewaitd-fuzz TARGET FILE...  (targets: \(FuzzTargets.names.joined(separator: " ")))\n",
                    stderr)
                exit(2)
            }
            selected = arguments[1]
            for path in arguments.dropFirst(2) {
                guard let file = fopen(path, "rb") else { fputs("cannot open \(path)\n", stderr); exit(1) }
                var bytes = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = fread(&buffer, 1, buffer.count, file)
                    if n <= 0 { break }
                    bytes += buffer[0..<n]
                }
                fclose(file)
                _ = bytes.withUnsafeBufferPointer { fuzzOneInput($0.baseAddress, $0.count) }
            }
        #endif
    }
}
