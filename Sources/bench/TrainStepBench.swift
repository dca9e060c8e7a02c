import ArgumentParser
import CBLAS
import Foundation
import NN
import Retrieval
import Tensor

/// A synthetic batch at the paper's QVHighlights shapes, for the step and inference benchmarks.
enum PaperBatch {
    static func make(batch: Int, clips: Int = 75, tokens: Int = 32, videoWidth: Int = 2818, textWidth: Int = 512,
                     seed: UInt64 = 3) -> MomentBatch {
        var g = SeededGenerator(seed: seed)
        var video = Tensor(zeros: [batch, clips, videoWidth]), text = Tensor(zeros: [batch, tokens, textWidth])
        video.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] = 0.02 * g.nextNormal() } }
        text.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] = 0.05 * g.nextNormal() } }
        let videoMask = Tensor(repeating: 1, shape: [batch, clips]), textMask = Tensor(repeating: 1, shape: [batch, tokens])
        var scores = Tensor(zeros: [batch, clips])
        var windows: [[SpanTarget]] = [], positives: [[Int]] = [], negatives: [[Int]] = []
        for b in 0..<batch {
            let start = Int.random(in: 0..<(clips - 10), using: &g), length = Int.random(in: 2...10, using: &g)
            windows.append([SpanTarget(start: Float(start * 2), end: Float((start + length) * 2), duration: Float(clips * 2))])
            var relevant: [Int] = [], summed: [Float] = []
            for c in start..<(start + length) {
                let s = Float(Int.random(in: 3...12, using: &g))
                scores[b, c] = s
                relevant.append(c)
                summed.append(s)
            }
            let pairs = SaliencyPairSampler.sample(relevantClips: relevant, summedScores: summed, clipCount: clips, generator: &g)
            positives.append(pairs.positives)
            negatives.append(pairs.negatives)
        }
        return MomentBatch(videoFeatures: video, videoMask: videoMask, textFeatures: text, textMask: textMask, windows: windows,
                           saliency: SaliencyTargets(scores: scores, positiveClips: positives, negativeClips: negatives),
                           durations: [Float](repeating: Float(clips * 2), count: batch))
    }
}

/// One training step (forward incl. the negative-pair encoder pass, matched loss, backward, clip 0.1,
/// AdamW) at the paper's QVHighlights configuration, against PyTorch running the authors' QD-DETR.
/// `--profile` also breaks one step of QD-DETR b32, TD-DETR b64 and CDNet b32 (d 1024) down by kind of work
/// and replays its matrix products on bare sgemm for the step's GEMM floor (`StepProfile`).
struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-step", abstract: "Training step time at the paper's configuration.")

    @Option(help: "Timed steps (median reported).") var repeats = 5
    @Option(help: "Threads (OpenBLAS and kernels).") var threads = 2
    @Flag(help: "Time per kind of work and the GEMM floor of a QD-DETR b32, TD-DETR b64 and CDNet b32 (d 1024) step, and of the default pipeline's TD-DETR (d 64, b32 + 32 synthesized).")
    var profile = false
    @Flag(help: "Hand large products to OpenBLAS's own threads instead of splitting them across the project's workers.")
    var openblasThreads = false
    @Option(help: "Only the models whose label contains this (e.g. qd-detr.b32).") var only: String?
    @Option(help: "Rows of the table of GEMM shapes (largest first).") var shapes = 12
    @Option(help: "The product kernel: avx512 (the default where the CPU has it) or openblas.")
    var gemm: GEMM.Kernel = GEMM.kernel

    func run() throws {
        guard gemm != .avx512 || GEMM.avx512Available else { throw ValidationError("--gemm avx512: this CPU has no AVX-512") }
        GEMM.kernel = gemm
        Parallelism.setThreadCount(threads)
        Parallelism.productSplitting = !openblasThreads
        print("paper configuration: 75 clips, 32 tokens, 2818-d video, 512-d text, d 256, 8 heads, FFN 1024, 2 T2V + 2 enc + 2 dec layers, 10 queries; \(threads) threads")
        print(Measure.environmentLine())
        if profile {
            // Each model is built only when its turn comes, and only if `--only` picks it: CDNet at d 1024 alone holds
            // about 1 GB of weights, gradients and optimizer state.
            let steps: [(label: String, make: (String) -> TrainingStep)] = [
                ("qd-detr.b32", { .detr($0, .qdDETR(), batch: 32) }),
                ("td-detr.b64", { .detr($0, .tdDETR(), batch: 64) }),
                ("cdnet-d1024.b32", { .cdnet($0, CDNetConfig(), batch: 32) }),
                ("td-detr-d64.b64", { .detr($0, .pipelineDefault(.tdDETR()), batch: 64, shapes: .synthetic) }),
            ]
            for entry in steps where only.map({ entry.label.contains($0) }) ?? true {
                StepProfile(step: entry.make(entry.label), repeats: repeats, shapeRows: shapes).report()
            }
            return
        }
        print("anchor: PyTorch 2 (MKL) running the authors' QD-DETR on this CPU, 2 threads: batch 32 step 1658 ms, batch 64 3057 ms (ANCHORS.md)")
        // The default pipeline's step has no PyTorch anchor; it is timed here without the profiler's bookkeeping.
        let steps: [(label: String, make: (String) -> TrainingStep, anchor: Double?)] = [
            ("qd-detr.b32", { .detr($0, .qdDETR(), batch: 32) }, 1658),
            ("qd-detr.b64", { .detr($0, .qdDETR(), batch: 64) }, 3057),
            ("td-detr.b64", { .detr($0, .tdDETR(), batch: 64) }, 3057),
            ("td-detr-d64.b64", { .detr($0, .pipelineDefault(.tdDETR()), batch: 64, shapes: .synthetic) }, nil),
        ]
        for entry in steps where only.map({ entry.label.contains($0) }) ?? true {
            let step = entry.make(entry.label)
            let time = Measure.median(repeats: repeats, step.run)
            guard let anchor = entry.anchor else {
                print(String(format: "%@: %.1f ms per step (%d parameters)", step.label, time * 1000, step.parameterCount))
                Measure.figure("train-step.\(step.label).ms", time * 1000, "ms", digits: 1)
                continue
            }
            print(String(format: "%@: %.0f ms per step (%d parameters); anchor %.0f ms -> %.2fx faster", step.label, time * 1000,
                         step.parameterCount, anchor, anchor / (time * 1000)))
            Measure.figure("train-step.\(step.label).ms", time * 1000, "ms", digits: 1)
            Measure.figure("train-step.\(step.label).speedup_vs_pytorch", anchor / (time * 1000), "x")
        }
    }
}

/// The clip, token and feature sizes of a benchmark batch.
struct BatchShapes {
    let clips: Int, tokens: Int, videoWidth: Int, textWidth: Int

    /// QVHighlights at the paper's configuration.
    static let paper = BatchShapes(clips: 75, tokens: 32, videoWidth: 2818, textWidth: 512)
    /// The embedded synthetic benchmark's defaults: videos of at most 40 clips with 64-d features and 2 TEF,
    /// queries of at most 8 tokens of 32 dims.
    static let synthetic = BatchShapes(clips: 40, tokens: 8, videoWidth: 66, textWidth: 32)
}

extension ModelConfig {
    /// The default pipeline's small model (pipeline.json: d 64, 4 heads, FFN 128, input dropout 0.1) on the
    /// synthetic benchmark's features.
    static func pipelineDefault(_ base: ModelConfig) -> ModelConfig {
        var config = base
        (config.videoFeatureWidth, config.textFeatureWidth) = (BatchShapes.synthetic.videoWidth, BatchShapes.synthetic.textWidth)
        (config.hiddenWidth, config.heads, config.feedForwardWidth, config.inputDropout) = (64, 4, 128, 0.1)
        return config
    }
}

/// One model's whole training step on a synthetic batch at the paper's shapes: zero the gradients, forward,
/// loss (with matching), backward, clip to 0.1, AdamW.
struct TrainingStep {
    let label: String
    let parameterCount: Int
    let run: () -> Void

    static func detr(_ label: String, _ config: ModelConfig, batch size: Int, shapes: BatchShapes = .paper) -> TrainingStep {
        var g = SeededGenerator(seed: 1)
        let model = MomentDETR(config: config, generator: &g)
        return step(label, model, batch: size, shapes: shapes) { batch, context in
            let outputs = model.forward(batch, context: context)
            return Profiler.region(.lossAndMatcher) { model.loss(outputs, batch: batch).total }
        }
    }

    static func cdnet(_ label: String, _ config: CDNetConfig, batch size: Int) -> TrainingStep {
        var g = SeededGenerator(seed: 1)
        let model = CDNet(config: config, generator: &g)
        return step(label, model, batch: size) { batch, context in
            let outputs = model.forward(batch, context: context)
            return Profiler.region(.lossAndMatcher) { model.loss(outputs, batch: batch, generator: &context.generator).total }
        }
    }

    /// The step of `model` whose forward pass and loss on a batch is `loss`.
    private static func step(_ label: String, _ model: Module, batch size: Int, shapes: BatchShapes = .paper,
                             loss: @escaping (MomentBatch, ForwardContext) -> Variable) -> TrainingStep {
        let optimizer = AdamW(module: model, learningRate: 1e-4, weightDecay: 1e-4)
        let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 2))
        let batch = PaperBatch.make(batch: size, clips: shapes.clips, tokens: shapes.tokens, videoWidth: shapes.videoWidth,
                                    textWidth: shapes.textWidth)
        return TrainingStep(label: label, parameterCount: model.parameterCount) {
            model.zeroGrad()
            loss(batch, context).backward()
            optimizer.update(gradientScale: GradientClipping.globalNormScale(model.parameters, maxNorm: 0.1).scale)
        }
    }
}

/// Where one training step's time goes, and how far it is from its GEMM floor.
///
/// One step runs under `Profiler`: each kind of work's own wall time on the calling thread, and every matrix
/// product the step makes, by shape. The floor is the time the step's product kernel takes, bare (dense
/// operands, the same shapes and transposes, every call of the step), for all of the step's products:
/// `FloorReplay`. On the AVX-512 kernel, the floor on bare `cblas_sgemm` (OpenBLAS's own threads) is printed too,
/// and for either kernel the floor with every operand taken from memory rather than the caches (`inMemory`): the
/// step's products lie between the two, so the step's time over that one bounds the work outside them from below.
/// Steps and floor replays then alternate for `repeats` rounds, so drifting load on a shared machine hits both
/// alike; the floor ratio is the median over rounds of step time over replay time. Products the step runs side
/// by side on one thread each (attention's per-head ones) are replayed one after another, as a user calling
/// sgemm would run them, so the attention kernel can beat its share of the floor.
struct StepProfile {
    let step: TrainingStep
    let repeats: Int
    let shapeRows: Int

    /// Steps run before the profiled one. The first steps map the heap that later ones reuse: the second step of a
    /// QD-DETR b32 process still page-faulted 30 MiB in (about 7600 faults), which the profile charged to whichever
    /// kernels first wrote the fresh pages (the feed-forward activations' element-wise passes most), so the profiled
    /// step is one with the timed rounds' few faults.
    static let warmUpSteps = 3
    /// Steps profiled after them. One step's time per kind of work moves with the load on a shared machine (the
    /// attention row of a QD-DETR b32 step from 45 to 74 ms between two runs); the table gives each figure's median
    /// over these steps.
    static let profiledSteps = 3

    func report() {
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        for _ in 0..<Self.warmUpSteps { step.run() }
        var tallies: [Profiler.Tally] = [], profiledTimes: [Double] = [], profiledFaults: [Int] = []
        for _ in 0..<Self.profiledSteps {
            Profiler.start()
            let faultsBefore = minorPageFaults()
            let start = Measure.now()
            step.run()
            profiledTimes.append(Measure.now() - start)
            profiledFaults.append(minorPageFaults() - faultsBefore)
            tallies.append(Profiler.stop())
        }
        // Every step makes the same products; each time is the median over the profiled steps.
        var tally = tallies[0]
        tally.seconds = Dictionary(uniqueKeysWithValues: Set(tallies.flatMap(\.seconds.keys)).map { kind in
            (kind, median(tallies.map { $0.seconds[kind] ?? 0 }))
        })
        tally.productSeconds = Dictionary(uniqueKeysWithValues: tally.products.keys.map { product in
            (product, median(tallies.map { $0.productSeconds[product] ?? 0 }))
        })
        let profiled = median(profiledTimes)
        let unmarked = median(zip(profiledTimes, tallies).map { $0 - $1.seconds.values.reduce(0, +) })
        let shapes = tally.products.sorted { $0.key.flops * Double($0.value) > $1.key.flops * Double($1.value) }
        let replay = FloorReplay(shapes.map { ($0.key, $0.value) }, kernel: GEMM.kernel)
        let openBLASReplay = GEMM.kernel == .openBLAS ? nil : FloorReplay(shapes.map { ($0.key, $0.value) }, kernel: .openBLAS)
        let inMemoryReplay = FloorReplay(shapes.map { ($0.key, $0.value) }, kernel: GEMM.kernel, inMemory: true)
        // One more untimed step: the replays' buffers took heap space the steps had freed, so the next step maps (and
        // page-faults) fresh memory; the timed rounds then start from the heap they keep.
        step.run()
        var steps: [Double] = [], floors: [Double] = [], ratios: [Double] = [], openBLASFloors: [Double] = [], openBLASRatios: [Double] = []
        var inMemoryFloors: [Double] = [], inMemoryRatios: [Double] = []
        var roundFaults = 0, faultsByRound: [Int] = []
        for _ in 0..<repeats {
            let faultsAtStart = minorPageFaults()
            let t0 = Measure.now()
            step.run()
            let stepTime = Measure.now() - t0
            faultsByRound.append(minorPageFaults() - faultsAtStart)
            roundFaults += faultsByRound.last!
            let floorTime = replay.run()
            steps.append(stepTime)
            floors.append(floorTime)
            ratios.append(stepTime / floorTime)
            let inMemoryTime = inMemoryReplay.run()
            inMemoryFloors.append(inMemoryTime)
            inMemoryRatios.append(stepTime / inMemoryTime)
            if let openBLASReplay {
                let openBLASTime = openBLASReplay.run()
                openBLASFloors.append(openBLASTime)
                openBLASRatios.append(stepTime / openBLASTime)
            }
        }
        let (time, floor, ratio) = (median(steps), median(floors), median(ratios))
        let flops = tally.gemmFlops
        let perShape = replay.perShapeSeconds()
        let openBLASPerShape = openBLASReplay?.perShapeSeconds()

        print("")
        print(String(format: "%@: %.0f ms per step (median of %d; the %d profiled steps took %@ ms), %d parameters, %.1f GFLOP in %d products",
                     step.label, time * 1e3, repeats, Self.profiledSteps,
                     profiledTimes.map { String(format: "%.0f", $0 * 1e3) }.joined(separator: ", "),
                     step.parameterCount, flops / 1e9, tally.products.values.reduce(0, +)))
        // The profiled steps are steps of their own; the timed rounds' median is the per-step figure.
        let steadyFaults = Double(roundFaults) / Double(max(repeats, 1))
        print(String(format: "minor page faults: %.0f per timed step (%.1f MiB of fresh pages); %@ in the profiled steps (steps %d to %d)",
                     steadyFaults, steadyFaults * 4 / 1024, profiledFaults.map(String.init).joined(separator: ", "),
                     Self.warmUpSteps + 1, Self.warmUpSteps + Self.profiledSteps))
        print(String(format: "GEMM floor: %.0f ms (the step's products, bare, on the %@ kernel: %.1f GFLOP/s); step / floor = %.2fx (median over rounds)",
                     floor * 1e3, GEMM.kernel.rawValue, flops / floor / 1e9, ratio))
        // Each round's own figures: on a shared machine the ratio moves from round to round.
        for round in 0..<repeats {
            print(String(format: "round %d: step %.0f ms, floor %.0f ms, %.2fx, %d page faults", round + 1, steps[round] * 1e3,
                         floors[round] * 1e3, ratios[round], faultsByRound[round]))
        }
        // The floor above finds its operands in the caches; this one takes each from memory. A step lies between.
        print(String(format: "GEMM floor with every operand in memory: %.0f ms (%.1f GFLOP/s); step / that floor = %.2fx",
                     median(inMemoryFloors) * 1e3, flops / median(inMemoryFloors) / 1e9, median(inMemoryRatios)))
        if !openBLASFloors.isEmpty {
            print(String(format: "OpenBLAS floor: %.0f ms (bare cblas_sgemm on OpenBLAS's threads: %.1f GFLOP/s); step / OpenBLAS floor = %.2fx",
                         median(openBLASFloors) * 1e3, flops / median(openBLASFloors) / 1e9, median(openBLASRatios)))
        }
        var rows: [(String, Double)] = Profiler.Kind.allCases.compactMap { kind in tally.seconds[kind].map { (kind.rawValue, $0) } }
        rows.append(("other (autograd bookkeeping, allocation, unmarked work)", unmarked))
        print("| work | ms (median of the profiled steps) | share of the profiled step |")
        print("|---|---:|---:|")
        for (name, seconds) in rows.sorted(by: { $0.1 > $1.1 }) {
            print(String(format: "| %@ | %.1f | %.1f%% |", name, seconds * 1e3, seconds / profiled * 100))
        }
        print("GEMM shapes by FLOPs (own time is on the calling thread; products inside attention run on workers and show none):")
        print("| m x n x k (transposes) | calls | GFLOP | own ms | bare ms | bare GFLOP/s |" + (openBLASPerShape == nil ? "" : " bare OpenBLAS GFLOP/s |"))
        print("|---|---:|---:|---:|---:|---:|" + (openBLASPerShape == nil ? "" : "---:|"))
        for (product, count) in shapes.prefix(shapeRows) {
            let gflop = product.flops * Double(count) / 1e9
            let bare = perShape[product] ?? 0
            let openBLASColumn = openBLASPerShape.map { String(format: " %.1f |", gflop / ($0[product] ?? 0)) } ?? ""
            print(String(format: "| %d x %d x %d (%@%@) | %d | %.2f | %.1f | %.1f | %.1f |", product.m, product.n, product.k,
                         product.transposeA ? "Aᵀ" : "A", product.transposeB ? "Bᵀ" : "B", count, gflop,
                         (tally.productSeconds[product] ?? 0) * 1e3, bare * 1e3, gflop / bare) + openBLASColumn)
        }
        Measure.figure("train-step.\(step.label).ms", time * 1e3, "ms", digits: 1)
        Measure.figure("train-step.\(step.label).floor_ms", floor * 1e3, "ms", digits: 1)
        Measure.figure("train-step.\(step.label).floor_ratio", ratio, "x")
        Measure.figure("train-step.\(step.label).page_faults_per_step", steadyFaults, "faults", digits: 0)
        Measure.figure("train-step.\(step.label).in_memory_floor_ms", median(inMemoryFloors) * 1e3, "ms", digits: 1)
        Measure.figure("train-step.\(step.label).in_memory_floor_ratio", median(inMemoryRatios), "x")
        if !openBLASFloors.isEmpty {
            Measure.figure("train-step.\(step.label).openblas_floor_ms", median(openBLASFloors) * 1e3, "ms", digits: 1)
            Measure.figure("train-step.\(step.label).openblas_floor_ratio", median(openBLASRatios), "x")
        }
        for (kind, seconds) in tally.seconds.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            Measure.figure("train-step.\(step.label).profile.\(kind).ms", seconds * 1e3, "ms", digits: 1)
        }
        Measure.figure("train-step.\(step.label).profile.other.ms", rows.last!.1 * 1e3, "ms", digits: 1)
    }
}

/// Minor page faults of the process so far (each a page the kernel mapped and zeroed on first touch).
func minorPageFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

/// Every product of a step, `calls` times each shape, bare on dense buffers of random values allocated once
/// (each the size of the largest operand): on OpenBLAS, `cblas_sgemm` with OpenBLAS's own threads; on the
/// AVX-512 kernel, `GEMM.multiply` (the kernel split across the project's threads, as in a step).
///
/// The calls of one shape reuse one set of buffers, so a product finds its operands in the caches, which a step's
/// products do not always do (a weight gradient reads activations the forward pass wrote long before). With
/// `inMemory`, each call takes its operands and result from the next place in pools of `poolBytes` each, several
/// times the last-level cache, so that they come from memory: the floor of a step whose every operand is cold.
final class FloorReplay {
    let shapes: [(product: Profiler.Product, calls: Int)]
    let kernel: GEMM.Kernel
    let inMemory: Bool
    private let a: [Float], b: [Float]
    private var c: [Float]
    private var lastSeconds: [Profiler.Product: Double] = [:]
    /// The size of each pool of an in-memory replay.
    static let poolBytes = 128 << 20

    init(_ shapes: [(Profiler.Product, Int)], kernel: GEMM.Kernel, inMemory: Bool = false) {
        self.shapes = shapes.map { (product: $0.0, calls: $0.1) }
        self.kernel = kernel
        self.inMemory = inMemory
        var g = SeededGenerator(seed: 5)
        var sizeA = shapes.map { $0.0.m * $0.0.k }.max() ?? 0, sizeB = shapes.map { $0.0.k * $0.0.n }.max() ?? 0
        var sizeC = shapes.map { $0.0.m * $0.0.n }.max() ?? 0
        if inMemory {
            let pool = Self.poolBytes / MemoryLayout<Float>.size
            (sizeA, sizeB, sizeC) = (Swift.max(sizeA, pool), Swift.max(sizeB, pool), Swift.max(sizeC, pool))
        }
        a = (0..<sizeA).map { _ in g.nextUniform(in: -1, 1) }
        b = (0..<sizeB).map { _ in g.nextUniform(in: -1, 1) }
        c = [Float](repeating: 0, count: sizeC)
    }

    /// Seconds for one pass over every call. After OpenBLAS, its worker threads spin for a while before they
    /// sleep; the wait for that (not timed) keeps them off the cores while the next step is timed, as in `Replay`.
    func run() -> Double {
        let stepKernel = GEMM.kernel
        GEMM.kernel = kernel
        if kernel == .openBLAS { openblas_set_num_threads(Int32(Parallelism.threadCount)) }
        defer {
            GEMM.kernel = stepKernel
            if kernel == .openBLAS {
                Parallelism.setThreadCount(Parallelism.threadCount)
                usleep(250_000)
            }
        }
        var total = 0.0
        // Where the next call's operands start in the pools (in-memory replays only), each 64-byte aligned.
        var offsets = (a: 0, b: 0, c: 0)
        func next(_ offset: inout Int, _ size: Int, in pool: Int) -> Int {
            guard inMemory else { return 0 }
            if offset + size > pool { offset = 0 }
            defer { offset += (size + 15) / 16 * 16 }
            return offset
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    for (product, calls) in shapes {
                        let (m, n, k) = (product.m, product.n, product.k)
                        guard m > 0, n > 0, k > 0 else { continue }
                        let (lda, ldb) = (product.transposeA ? m : k, product.transposeB ? k : n)
                        let start = Measure.now()
                        for _ in 0..<calls {
                            let (aStart, bStart, cStart) = (next(&offsets.a, m * k, in: ap.count), next(&offsets.b, k * n, in: bp.count),
                                                            next(&offsets.c, m * n, in: cp.count))
                            let (a, b, c) = (ap.baseAddress! + aStart, bp.baseAddress! + bStart, cp.baseAddress! + cStart)
                            if kernel == .avx512 {
                                GEMM.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: product.transposeA,
                                              b, ldb: ldb, transposeB: product.transposeB, into: c, ldc: n)
                            } else {
                                cblas_sgemm(CblasRowMajor, product.transposeA ? CblasTrans : CblasNoTrans,
                                            product.transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                                            a, Int32(lda), b, Int32(ldb), 0, c, Int32(n))
                            }
                        }
                        let seconds = Measure.now() - start
                        lastSeconds[product] = seconds
                        total += seconds
                    }
                }
            }
        }
        return total
    }

    /// Each shape's seconds in the last pass.
    func perShapeSeconds() -> [Profiler.Product: Double] { lastSeconds }
}

/// Inference (forward only, no gradients) of a batch of 32 at the paper's configuration.
struct InferBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Inference time at the paper's configuration.")

    @Option(help: "Timed batches (median reported).") var repeats = 10
    @Option(help: "Threads (OpenBLAS and kernels).") var threads = 2

    func run() throws {
        Parallelism.setThreadCount(threads)
        print(Measure.environmentLine())
        print("anchor: PyTorch 2 running the authors' QD-DETR, inference of a batch of 32, 2 threads: 325 ms (ANCHORS.md)")
        for (label, config) in [("qd-detr", ModelConfig.qdDETR()), ("td-detr", ModelConfig.tdDETR())] {
            var g = SeededGenerator(seed: 1)
            let model = MomentDETR(config: config, generator: &g)
            let batch = PaperBatch.make(batch: 32)
            let time = Measure.median(repeats: repeats) { _ = model.predict(batch) }
            print(String(format: "%@: %.0f ms per batch of 32; anchor 325 ms -> %.2fx faster", label, time * 1000, 325 / (time * 1000)))
            Measure.figure("infer.\(label).b32.ms", time * 1000, "ms", digits: 1)
            Measure.figure("infer.\(label).b32.speedup_vs_pytorch", 325 / (time * 1000), "x")
        }
    }
}
