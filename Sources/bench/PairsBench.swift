import ArgumentParser
import CBLAS
import Foundation
import Retrieval
import Tensor

/// Pair mining at scale: global scope, mean-cosine similarity, top-k, timed end to end from pooled vectors
/// (one clip per video, so the miner's pooling is a normalisation), against a bare product of the miner's
/// block shape on the same kernel in the same run (ARCHITECTURE.md sections 7 and 11).
struct PairsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairs",
        abstract: "Pair mining GFLOP/s at 10k and 100k videos vs a bare product of the block shape, and peak memory.")

    @Option(help: "Pooled feature dims (the mean of a video's unit clip vectors).")
    var dim = 512
    @Option(help: "Partners kept per video.")
    var k = 5
    @Option(help: "Timed repetitions at 10k videos and of the sgemm anchor (median reported); 100k runs once.")
    var repeats = 3

    func run() throws {
        let block = PairMiner(k: k).block
        let threads = Parallelism.threadCount
        print("pairs: global scope, mean-cosine, top-\(k), pooled dim \(dim) (each video's mean unit clip vector; "
              + "here one clip per video), block \(block); \(threads) threads")
        print(Measure.environmentLine())
        print("anchor: a bare product of the miner's block shape (\(block) x \(dim) . \(dim) x \(block), B transposed), "
              + (GEMM.kernel == .avx512 ? "the AVX-512 kernel on the project's" : "cblas_sgemm on OpenBLAS's own")
              + " \(threads) threads, median of \(anchorRepeats); measured before and after each size "
              + "(the machine may be shared); the ratio uses the higher, so contention can only lower it")

        let small = try measure(videos: 10_000, repeats: repeats, block: block)
        report("10k", small, note: "median of \(repeats)")

        // Peak memory of the 100k run alone: reset the high-water mark first where the kernel allows it.
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        let large = try measure(videos: 100_000, repeats: 1, block: block)
        report("100k", large, note: "one run")
        let peak = Self.peakResidentMB()
        let inputMB = Double(100_000 * dim * 4) / 1_048_576
        print(String(format: "100k peak resident memory %.0f MB (%@; the pooled input alone is %.0f MB, the miner "
                     + "normalises a copy of it and keeps a %d x %d tile)", peak,
                     reset ? "VmHWM, reset just before the 100k data was made" : "process maximum RSS", inputMB, block, block))

        Measure.figure("pairs.10k.gflops", small.gflops, "GFLOP/s", digits: 1)
        Measure.figure("pairs.10k.gflops_ratio", small.gflops / small.anchor, "x")
        Measure.figure("pairs.100k.gflops", large.gflops, "GFLOP/s", digits: 1)
        Measure.figure("pairs.100k.gflops_ratio", large.gflops / large.anchor, "x")
        Measure.figure("pairs.100k.peak_mb", peak, "MB", digits: 0)
    }

    var anchorRepeats: Int { max(5, repeats * 3) }

    struct Timing {
        var seconds: Double
        var gflops: Double
        /// The sgemm anchor's GFLOP/s before and after the run.
        var anchorBefore: Double
        var anchorAfter: Double
        var anchor: Double { max(anchorBefore, anchorAfter) }
        /// CPU seconds per wall second while mining: below the thread count when the machine is shared.
        var cores: Double
    }

    /// Mines `videos` random clustered pooled vectors between two anchor measurements; checks a few rows
    /// against direct dot products.
    func measure(videos n: Int, repeats: Int, block: Int) throws -> Timing {
        let (set, features) = Self.pooledVideos(count: n, dim: dim, seed: UInt64(n))
        var miner = PairMiner(k: k)
        miner.scope = .global
        miner.similarity = .meanCosine
        var result: PairMiner.Result?
        let before = sgemmRate(rows: block, depth: dim)
        let (cpu0, wall0) = (Self.cpuSeconds(), Measure.now())
        var failure: Error?
        let seconds = Measure.median(repeats: repeats, warmup: repeats > 1) {
            do { result = try miner.mine(set) } catch { failure = error }
        }
        if let failure { throw failure }
        let cores = (Self.cpuSeconds() - cpu0) / (Measure.now() - wall0)
        let after = sgemmRate(rows: block, depth: dim)
        try check(result!, set, features)
        let flops = 2 * Double(n) * Double(n) * Double(dim)
        return Timing(seconds: seconds, gflops: flops / seconds / 1e9, anchorBefore: before, anchorAfter: after, cores: cores)
    }

    /// User + system CPU time of this process: over wall time, the cores it actually got.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    func report(_ label: String, _ t: Timing, note: String) {
        print(String(format: "%@ videos: %.2f s (%@), %.1f GFLOP/s counted as 2 N^2 D; anchor %.1f / %.1f GFLOP/s "
                     + "before / after: %.2f x; the miner got %.2f cores of CPU time", label, t.seconds, note, t.gflops,
                     t.anchorBefore, t.anchorAfter, t.gflops / t.anchor, t.cores))
    }

    /// Vectors around 256 random centres (so neighbours are meaningful), one clip per video, no tef.
    static func pooledVideos(count n: Int, dim d: Int, seed: UInt64) -> (VideoSet, [Float]) {
        var g = SeededGenerator(seed: seed)
        let centres = 256
        let centre = (0..<(centres * d)).map { _ in g.nextNormal() }
        var features = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            let c = Int(g.next() % UInt64(centres))
            for j in 0..<d { features[i * d + j] = centre[c * d + j] + 0.7 * g.nextNormal() }
        }
        return (VideoSet(vids: (0..<n).map { "v\($0)" }, durations: [Double](repeating: 2, count: n), clipLength: 2,
                         featureDim: d, tef: false, features: features, offsets: Array(0...n)), features)
    }

    /// The partners of a few rows against cosines computed directly, so a fast wrong answer cannot pass.
    func check(_ result: PairMiner.Result, _ set: VideoSet, _ f: [Float]) throws {
        let n = set.count, d = set.featureDim
        let norms = (0..<n).map { i in (0..<d).reduce(Float(0)) { $0 + f[i * d + $1] * f[i * d + $1] }.squareRoot() }
        for i in stride(from: 0, to: n, by: n / 7) {
            var best = (index: -1, score: -Float.infinity)
            for j in 0..<n where j != i {
                let s = (0..<d).reduce(Float(0)) { $0 + f[i * d + $1] * f[j * d + $1] } / (norms[i] * norms[j])
                if s > best.score { best = (j, s) }
            }
            guard abs(result.scores[i * result.k] - best.score) < 1e-4 else {
                throw ValidationError("row \(i): miner's best score \(result.scores[i * result.k]) (video \(result.partners[i * result.k])), "
                                      + "direct \(best.score) (video \(best.index))")
            }
        }
    }

    /// Median GFLOP/s of one bare product on the miner's tile, `[rows, depth] x [rows, depth]^T`: on the AVX-512
    /// kernel, `GEMM.multiply`; else `cblas_sgemm` with OpenBLAS threading over every core (the project otherwise
    /// pins OpenBLAS to one thread and splits large products itself; that setting is restored after).
    func sgemmRate(rows m: Int, depth: Int) -> Double {
        var g = SeededGenerator(seed: 7)
        let a = (0..<(m * depth)).map { _ in g.nextUniform(in: -1, 1) }
        let b = (0..<(m * depth)).map { _ in g.nextUniform(in: -1, 1) }
        var c = [Float](repeating: 0, count: m * m)
        if GEMM.kernel == .avx512 {
            let seconds = Measure.median(repeats: anchorRepeats) {
                c.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: m, n: m, k: depth, a, lda: depth, transposeA: false, b, ldb: depth, transposeB: true,
                                  into: out.baseAddress!, ldc: m)
                }
            }
            return 2 * Double(m) * Double(m) * Double(depth) / seconds / 1e9
        }
        let threads = Parallelism.threadCount
        openblas_set_num_threads(Int32(threads))
        defer { Parallelism.setThreadCount(threads) }
        let seconds = Measure.median(repeats: anchorRepeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(m), Int32(depth), 1, a, Int32(depth),
                        b, Int32(depth), 0, &c, Int32(m))
        }
        return 2 * Double(m) * Double(m) * Double(depth) / seconds / 1e9
    }

    /// Peak resident memory in MB: VmHWM from /proc/self/status, else getrusage's maximum RSS.
    static func peakResidentMB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kb / 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
