import ArgumentParser
import Foundation
import Tensor

/// One executable, one subcommand per figure (ARCHITECTURE.md section 11). Each subcommand prints a few
/// human-readable lines and ends with `NAME: VALUE UNIT` lines, one per figure.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks; run with `swift run -c release bench NAME`.",
        subcommands: [ShardsBench.self, NoopRunBench.self, ScoreBench.self, PairsBench.self, OpsBench.self,
                      TrainStepBench.self, InferBench.self])
}

/// Timing helpers shared by the subcommands.
enum Measure {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Runs `body` `repeats` times (after one warm-up) and returns the median duration in seconds.
    static func median(repeats: Int, warmup: Bool = true, _ body: () throws -> Void) rethrows -> Double {
        if warmup { try body() }
        var times: [Double] = []
        for _ in 0..<repeats {
            let start = now()
            try body()
            times.append(now() - start)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// The machine-readable figure line.
    static func figure(_ name: String, _ value: Double, _ unit: String, digits: Int = 2) {
        print("\(name): \(String(format: "%.\(digits)f", value)) \(unit)")
    }

    static func environmentLine() -> String {
        let env = ProcessInfo.processInfo.environment
        return "OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "(unset)") OPENBLAS_L2_SIZE=\(env["OPENBLAS_L2_SIZE"] ?? "(unset)"), \(ProcessInfo.processInfo.activeProcessorCount) cores, "
            + "GEMM kernel \(GEMM.kernel.rawValue) (AVX-512 \(GEMM.avx512Available ? "available" : "not available"))"
    }
}

extension GEMM.Kernel: ExpressibleByArgument {}
