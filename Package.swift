// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "closewaitd",
    products: [
        .executable(name: "closewaitd", targets: ["closewaitd"]),
        .executable(name: "closewaitd-workload", targets: ["closewaitd-workload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Pure model, kernel-format parsers, attribution join, tracker, policy, rendering. No I/O.
        .target(name: "CloseWaitCore"),
        // Kernel UAPI headers the Linux layer needs (netlink, sock_diag, inet_diag).
        .target(name: "CLinuxShim"),
        // The clock (CLOCK_MONOTONIC, CLOCK_REALTIME in seconds), in one place for every target.
        .target(name: "CClock"),
        // The eBPF loader: the committed libbpf skeletons of bpf/closewait.bpf.c (make bpf) and
        // a small C API over them; links Debian's libbpf1 (libbpf-dev to build).
        .target(name: "CBPFScanner", exclude: ["bpf"], linkerSettings: [.linkedLibrary("bpf")]),
        // Thin I/O: netlink sock_diag socket, /proc readers, the sampler, the eBPF scanner.
        .target(name: "CloseWaitLinux", dependencies: ["CloseWaitCore", "CLinuxShim", "CClock", "CBPFScanner"]),
        .systemLibrary(
            name: "CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        // sd_notify, sd_journal_sendv, a swift-log handler writing to the journal.
        .target(
            name: "CloseWaitSystemd",
            dependencies: [
                "CSystemd", "CClock", "CloseWaitCore", .product(name: "Logging", package: "swift-log"),
            ]),
        // Config file loading (TOMLKit) and the daemon loop, kept out of the executable so tests can reach them.
        .target(
            name: "CloseWaitDaemon",
            dependencies: [
                "CloseWaitCore", "CloseWaitLinux", "CloseWaitSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]),
        .executableTarget(
            name: "closewaitd",
            dependencies: [
                "CloseWaitCore", "CloseWaitLinux", "CloseWaitDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Makes real CLOSE_WAIT sockets on loopback (tests, benchmarks, demos).
        .executableTarget(
            name: "closewaitd-workload",
            dependencies: [
                "CLinuxShim", "CClock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The fuzz targets (every parser of untrusted bytes, with its properties), shared by
        // the libFuzzer binary (make fuzz) and the unit tests that replay the seed corpora.
        .target(name: "CloseWaitFuzz", dependencies: ["CloseWaitCore", "CloseWaitDaemon"]),
        // libFuzzer entry point (built with -sanitize=fuzzer -D FUZZING), or a corpus replayer.
        .target(name: "CFuzzShim"),
        .executableTarget(name: "closewaitd-fuzz", dependencies: ["CloseWaitFuzz", "CFuzzShim"]),
        // Runs the built executables and the loopback workload (live tests, benchmark).
        .target(name: "WorkloadSupport"),
        // The performance benchmark against ss -tnp (make bench).
        .executableTarget(
            name: "closewaitd-bench",
            dependencies: [
                "CloseWaitCore", "CloseWaitLinux", "CloseWaitDaemon", "WorkloadSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "CloseWaitCoreTests", dependencies: ["CloseWaitCore"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "CloseWaitLinuxTests", dependencies: ["CloseWaitCore", "CloseWaitLinux"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "CloseWaitSystemdTests",
            dependencies: [
                "CloseWaitCore", "CloseWaitSystemd", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CloseWaitDaemonTests",
            dependencies: ["CloseWaitCore", "CloseWaitLinux", "CloseWaitDaemon", "CloseWaitFuzz"]),
        .testTarget(name: "LiveTests", dependencies: ["CloseWaitCore", "CloseWaitLinux", "WorkloadSupport"]),
    ]
)
