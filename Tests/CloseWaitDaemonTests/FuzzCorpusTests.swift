import CloseWaitFuzz
import Foundation
import Testing

/// Every fuzz target over its committed seed corpus (Tests/fuzz/corpus, which also keeps the
/// inputs that once crashed), plus deterministic mutations of each seed: the CI-sized share of
/// `make fuzz`, run without libFuzzer so it needs no special build.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../fuzz/corpus").standardized.path

    @Test func everyTargetHasASeedCorpus() throws {
        let directories = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).sorted()
        #expect(directories == FuzzTargets.names.sorted())
    }

    @Test(arguments: FuzzTargets.names)
    func seedsAndTheirMutationsKeepEveryProperty(target: String) throws {
        let directory = Self.corpus + "/" + target
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(!files.isEmpty)
        var state: UInt64 = 0x9e37_79b9
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        for file in files {
            let seed = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            #expect(FuzzTargets.run(target, seed))
            for _ in 0..<300 {
                var input = seed
                for _ in 0...(next() % 4) {
                    switch next() % 4 {
                    case 0 where !input.isEmpty:
                        input[Int(next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: next())
                    case 1 where !input.isEmpty: input.removeSubrange(Int(next() % UInt64(input.count))...)
                    case 2:
                        input.insert(
                            UInt8(truncatingIfNeeded: next()), at: input.isEmpty ? 0 : Int(next() % UInt64(input.count))
                        )
                    default: if !input.isEmpty { input.remove(at: Int(next() % UInt64(input.count))) }
                    }
                }
                FuzzTargets.run(target, input)
            }
        }
    }
}
