import ArgumentParser
import CBLAS
import Foundation
import NN
import Tensor

/// The NN ops at the paper's QVHighlights shapes, each against bare calls of the product kernel on the same
/// shapes timed in the same run (ARCHITECTURE.md section 11).
///
/// For every op the bench lists the matrix products it issues (shapes, transposes, leading dimensions,
/// per-head slices) and replays exactly those products bare on the ops' kernel (`GEMM.kernel`): on OpenBLAS,
/// `cblas_sgemm` with OpenBLAS's own threads; on the AVX-512 kernel, `GEMM.multiply`. The per-head ones run
/// as a loop of calls. "sgemm" in the figures' names is that replay: the op's fraction of the sgemm rate is
/// the replay's time over the op's time. Op and replay alternate round by round, so drifting load on a
/// shared machine hits both alike. Time outside the products is measured with `GEMM.Timing`, which takes
/// the CPU time of every product call the op makes, against the process's CPU time.
struct OpsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Linear, attention and encoder-layer speed at QVHighlights shapes against bare sgemm.")

    @Option(help: "Timed repetitions per figure (median reported).")
    var repeats = 15
    @Option(help: "Threads for OpenBLAS and the project's kernels (default: every active core).")
    var threads: Int?
    @Flag(help: "Hand large products to OpenBLAS's own threads instead of splitting them across the project's workers.")
    var openblasThreads = false
    @Option(help: "The product kernel: avx512 (the default where the CPU has it) or openblas.")
    var gemm: GEMM.Kernel = GEMM.kernel

    // The paper's QVHighlights setting: batch 32, 75 clips, 32 text tokens, d 256, 8 heads, FFN 1024,
    // 2818-d video features.
    static let batch = 32
    static let clips = 75
    static let tokens = 32
    static let width = 256
    static let heads = 8
    static let feedForward = 1024
    static let videoWidth = 2818

    func run() throws {
        guard gemm != .avx512 || GEMM.avx512Available else { throw ValidationError("--gemm avx512: this CPU has no AVX-512") }
        GEMM.kernel = gemm
        if let threads { Parallelism.setThreadCount(threads) }
        Parallelism.productSplitting = !openblasThreads
        let (batch, clips, tokens, width, heads) = (Self.batch, Self.clips, Self.tokens, Self.width, Self.heads)
        let rows = batch * clips
        print("ops: batch \(batch), \(clips) clips, \(tokens) tokens, d \(width), \(heads) heads, FFN \(Self.feedForward), "
              + "input \(Self.videoWidth); \(Parallelism.threadCount) threads; median of \(repeats)")
        print(Measure.environmentLine())
        print("large products: " + (openblasThreads ? "OpenBLAS's own threads" : "split across the project's workers, OpenBLAS on one thread each"))
        print("anchor: the \(gemm.rawValue) kernel bare on each op's own products (same shapes, transposes, leading dimensions; "
              + (gemm == .openBLAS ? "cblas_sgemm with OpenBLAS's threads" : "GEMM.multiply on the project's threads") + "), same run; per-head products as a loop of calls (the ops run them side by side, so attention can pass 1.0)")
        var figures: [(String, Double, String, Int)] = []
        var generator = SeededGenerator(seed: 2024)

        // Linear ops: forward, and backward alone (the forward is rebuilt, untimed, before each backward).
        let linearCases: [(name: String, inFeatures: Int, outFeatures: Int, inputGradient: Bool)] = [
            ("input_projection", Self.videoWidth, width, false),
            ("ffn_up", width, Self.feedForward, true),
            ("ffn_down", Self.feedForward, width, true),
        ]
        for entry in linearCases {
            let layer = Linear(inFeatures: entry.inFeatures, outFeatures: entry.outFeatures, generator: &generator)
            let x = Variable(Initialization.uniform(shape: [batch, clips, entry.inFeatures], bound: 1, generator: &generator),
                             requiresGrad: entry.inputGradient)
            let upstream = Initialization.uniform(shape: [batch, clips, entry.outFeatures], bound: 1, generator: &generator)
            let products = Product.linear(rows: rows, inFeatures: entry.inFeatures, outFeatures: entry.outFeatures,
                                          inputGradient: entry.inputGradient)
            let bareForward = Replay(products.forward), bareBackward = Replay(products.backward)
            let times = interleavedMedians(ops: [
                { Self.seconds { _ = layer(x) } },
                {
                    layer.zeroGrad()
                    x.zeroGrad()
                    let y = layer(x)
                    return Self.seconds { y.backward(gradient: upstream) }
                },
            ], replays: [bareForward.run, bareBackward.run])
            let (forward, backward) = (times[0], times[1])
            let (forwardFlops, backwardFlops) = (Product.flops(products.forward), Product.flops(products.backward))
            let what = entry.inputGradient ? "input and weight gradients" : "weight gradient (the input is data)"
            print(String(format: "%@ %d -> %d: forward %.2f ms, %.1f GFLOP/s (sgemm %.1f); backward, %@, %.2f ms, %.1f GFLOP/s (sgemm %.1f)",
                         entry.name, entry.inFeatures, entry.outFeatures, forward * 1e3, forwardFlops / forward / 1e9,
                         forwardFlops / times[2] / 1e9, what, backward * 1e3, backwardFlops / backward / 1e9,
                         backwardFlops / times[3] / 1e9))
            figures += [
                ("ops.\(entry.name).fwd.gflops", forwardFlops / forward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).fwd.sgemm_gflops", forwardFlops / times[2] / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).fwd.sgemm_fraction", times[2] / forward, "x", 2),
                ("ops.\(entry.name).bwd.gflops", backwardFlops / backward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).bwd.sgemm_gflops", backwardFlops / times[3] / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).bwd.sgemm_fraction", times[3] / backward, "x", 2),
            ]
        }

        // Layers, forward + backward with dropout 0.1 in training mode.
        let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 7))
        let video = Variable(Initialization.uniform(shape: [batch, clips, width], bound: 1, generator: &generator),
                             requiresGrad: true)
        let text = Variable(Initialization.uniform(shape: [batch, tokens, width], bound: 1, generator: &generator),
                            requiresGrad: true)
        let videoUpstream = Initialization.uniform(shape: [batch, clips, width], bound: 1, generator: &generator)
        // Text queries of varied length (a quarter to all of the 32 tokens), as a padded batch has.
        let textMask = KeyPaddingMask(batch: batch, length: tokens, isPadding: (0..<(batch * tokens)).map { i in
            i % tokens >= tokens / 4 + (i / tokens * 7) % (tokens - tokens / 4 + 1)
        })
        let validity = Tensor(repeating: 1, shape: [batch, clips])
        let position = Variable(SinePositionalEncoding(featureCount: width).encode(validity: validity))
        let clipMask = KeyPaddingMask(validity: validity)

        let selfAttention = MultiheadAttention(width: width, heads: heads, dropout: 0.1, generator: &generator)
        let crossAttention = MultiheadAttention(width: width, heads: heads, dropout: 0.1, generator: &generator)
        let encoder = TransformerEncoderLayer(width: width, heads: heads, feedForwardWidth: Self.feedForward,
                                              dropout: 0.1, generator: &generator)
        let layerCases: [(name: String, label: String, module: Module, products: [Product], pass: () -> Variable)] = [
            ("self_attention", "self-attention (75 clips)", selfAttention,
             Product.attention(batch: batch, queryLength: clips, keyLength: clips, width: width, heads: heads),
             { selfAttention(query: video, key: video, value: video, keyPaddingMask: clipMask, context: context) }),
            ("cross_attention", "cross-attention (75 clips over 32 tokens)", crossAttention,
             Product.attention(batch: batch, queryLength: clips, keyLength: tokens, width: width, heads: heads),
             { crossAttention(query: video, key: text, value: text, keyPaddingMask: textMask, context: context) }),
            ("encoder_layer", "encoder layer (self-attention + FFN, post-norm)", encoder,
             Product.attention(batch: batch, queryLength: clips, keyLength: clips, width: width, heads: heads)
                + Product.linear(rows: rows, inFeatures: width, outFeatures: Self.feedForward, inputGradient: true).all
                + Product.linear(rows: rows, inFeatures: Self.feedForward, outFeatures: width, inputGradient: true).all,
             { encoder(video, position: position, keyPaddingMask: clipMask, context: context) }),
        ]
        for entry in layerCases {
            let step = {
                entry.module.zeroGrad()
                video.zeroGrad()
                text.zeroGrad()
                entry.pass().backward(gradient: videoUpstream)
            }
            let replay = Replay(entry.products)
            let times = interleavedMedians(ops: [{ Self.seconds(step) }], replays: [replay.run])
            let (time, bare) = (times[0], times[1])
            let flops = Product.flops(entry.products)
            print(String(format: "%@: forward + backward %.1f ms, %.1f GFLOP/s; bare sgemm of its products %.1f ms, %.1f GFLOP/s",
                         entry.label, time * 1e3, flops / time / 1e9, bare * 1e3, flops / bare / 1e9))
            figures += [
                ("ops.\(entry.name).fwd_bwd.ms", time * 1e3, "ms", 1),
                ("ops.\(entry.name).fwd_bwd.gflops", flops / time / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).sgemm_gflops", flops / bare / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).sgemm_fraction", bare / time, "x", 2),
            ]
            if entry.name == "encoder_layer" {
                let share = outsideBLASShare(step)
                print(String(format: "encoder layer: %.0f%% of its CPU time outside product calls (GEMM.Timing: CPU time of every call "
                             + "against the process's CPU time); 1 - sgemm fraction (bare replay subtracted) gives %.0f%%",
                             share * 100, (1 - bare / time) * 100))
                figures.append(("ops.encoder_layer.outside_blas_share", share, "x", 2))
            }
        }
        for (name, value, unit, digits) in figures { Measure.figure(name, value, unit, digits: digits) }
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = Measure.now()
        body()
        return Measure.now() - start
    }

    /// Runs every body once per round (a warm-up round, then `repeats` rounds) and returns each body's
    /// median, ops first, then replays. Each body returns the seconds it measured, so it can keep
    /// set-up work out of the time. Each op runs once untimed right before its timed run: the replays
    /// end with a pause (see `Replay.run`), after which the first parallel loop waits for sleeping
    /// threads to wake, which on this kind of virtual machine takes milliseconds.
    private func interleavedMedians(ops: [() -> Double], replays: [() -> Double]) -> [Double] {
        var times = [[Double]](repeating: [], count: ops.count + replays.count)
        for round in 0...repeats {
            var measured: [Double] = []
            for op in ops {
                _ = op()
                measured.append(op())
            }
            for replay in replays { measured.append(replay()) }
            if round > 0 {
                for (index, time) in measured.enumerated() { times[index].append(time) }
            }
        }
        return times.map { $0.sorted()[$0.count / 2] }
    }

    /// The share of CPU time spent outside product calls over `repeats` runs of `step`.
    private func outsideBLASShare(_ step: () -> Void) -> Double {
        let start = GEMM.Timing.cpuSeconds(thread: false)
        GEMM.Timing.start()
        for _ in 0..<repeats { step() }
        let (blas, _) = GEMM.Timing.stop()
        return 1 - blas / (GEMM.Timing.cpuSeconds(thread: false) - start)
    }
}

/// One matrix product an op issues, as `cblas_sgemm` sees it, so that it can be replayed bare.
struct Product {
    /// Where an operand lives. `dense` is one `rows x columns` matrix; `head` is column block `h` of a
    /// `[B, length, D]` activation (leading dimension `D`); `slice` is matrix `b * H + h` of a
    /// `[B, H, rows, columns]` score tensor.
    enum Operand {
        case dense(rows: Int, columns: Int)
        case head(length: Int)
        case slice(rows: Int, columns: Int)
    }

    let m: Int, n: Int, k: Int
    var transposeA = false, transposeB = false
    let a: Operand, b: Operand, c: Operand
    /// 1 for a plain product, `B * H` for per-head products.
    var count = 1

    var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(count) }

    static func flops(_ products: [Product]) -> Double { products.reduce(0) { $0 + $1.flops } }

    /// `y = x Wᵀ + b` with `x` `[rows, in]`, `W` `[out, in]`; backward `dx = g W` (when the input needs a
    /// gradient) and `dW = gᵀ x`.
    static func linear(rows: Int, inFeatures: Int, outFeatures: Int, inputGradient: Bool)
        -> (forward: [Product], backward: [Product], all: [Product]) {
        let forward = [Product(m: rows, n: outFeatures, k: inFeatures, transposeB: true,
                               a: .dense(rows: rows, columns: inFeatures), b: .dense(rows: outFeatures, columns: inFeatures),
                               c: .dense(rows: rows, columns: outFeatures))]
        var backward: [Product] = []
        if inputGradient {
            backward.append(Product(m: rows, n: inFeatures, k: outFeatures,
                                    a: .dense(rows: rows, columns: outFeatures), b: .dense(rows: outFeatures, columns: inFeatures),
                                    c: .dense(rows: rows, columns: inFeatures)))
        }
        backward.append(Product(m: outFeatures, n: inFeatures, k: rows, transposeA: true,
                                a: .dense(rows: rows, columns: outFeatures), b: .dense(rows: rows, columns: inFeatures),
                                c: .dense(rows: outFeatures, columns: inFeatures)))
        return (forward, backward, forward + backward)
    }

    /// Multi-head attention forward and backward: four projections (as linear ops whose inputs need
    /// gradients) and the per-head products of scaled dot-product attention.
    static func attention(batch: Int, queryLength lq: Int, keyLength lk: Int, width: Int, heads: Int) -> [Product] {
        let headWidth = width / heads
        let slices = batch * heads
        var products: [Product] = []
        for projectionRows in [batch * lq, batch * lk, batch * lk, batch * lq] {
            products += linear(rows: projectionRows, inFeatures: width, outFeatures: width, inputGradient: true).all
        }
        let scores = Operand.slice(rows: lq, columns: lk)
        products += [
            // S = Q Kᵀ, O = P V
            Product(m: lq, n: lk, k: headWidth, transposeB: true, a: .head(length: lq), b: .head(length: lk), c: scores, count: slices),
            Product(m: lq, n: headWidth, k: lk, a: scores, b: .head(length: lk), c: .head(length: lq), count: slices),
            // dV = Pᵀ dO, dP = dO Vᵀ, dQ = dS K, dK = dSᵀ Q
            Product(m: lk, n: headWidth, k: lq, transposeA: true, a: scores, b: .head(length: lq), c: .head(length: lk), count: slices),
            Product(m: lq, n: lk, k: headWidth, transposeB: true, a: .head(length: lq), b: .head(length: lk), c: scores, count: slices),
            Product(m: lq, n: headWidth, k: lk, a: scores, b: .head(length: lk), c: .head(length: lq), count: slices),
            Product(m: lk, n: headWidth, k: lq, transposeA: true, a: scores, b: .head(length: lq), c: .head(length: lk), count: slices),
        ]
        return products
    }
}

/// A list of products replayed bare on the product kernel, on buffers of random values allocated once per
/// product.
final class Replay {
    let products: [Product]
    private let buffers: [[UnsafeMutablePointer<Float>]]

    init(_ products: [Product]) {
        self.products = products
        var generator = SeededGenerator(seed: 11)
        buffers = products.map { product in
            [product.a, product.b, product.c].map { operand -> UnsafeMutablePointer<Float> in
                let count = Replay.elements(operand)
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
                for i in 0..<count { buffer[i] = generator.nextUniform(in: -1, 1) }
                return buffer
            }
        }
    }

    deinit { for set in buffers { for buffer in set { buffer.deallocate() } } }

    /// Runs every product once, on the AVX-512 kernel or with OpenBLAS's own threads (as a user calling sgemm
    /// would), and returns the seconds taken. After OpenBLAS, its worker threads spin for a while before they
    /// sleep; the wait for that (not timed) keeps them off the cores while the next op is timed.
    func run() -> Double {
        if GEMM.kernel == .avx512 {
            let start = Measure.now()
            for (product, set) in zip(products, buffers) {
                for slice in 0..<product.count {
                    GEMM.multiply(m: product.m, n: product.n, k: product.k,
                                  set[0] + Replay.offset(product.a, slice: slice), lda: Int(Replay.leadingDimension(product.a)),
                                  transposeA: product.transposeA,
                                  set[1] + Replay.offset(product.b, slice: slice), ldb: Int(Replay.leadingDimension(product.b)),
                                  transposeB: product.transposeB,
                                  into: set[2] + Replay.offset(product.c, slice: slice), ldc: Int(Replay.leadingDimension(product.c)))
                }
            }
            return Measure.now() - start
        }
        openblas_set_num_threads(Int32(Parallelism.threadCount))
        let start = Measure.now()
        for (product, set) in zip(products, buffers) {
            for slice in 0..<product.count {
                cblas_sgemm(CblasRowMajor,
                            product.transposeA ? CblasTrans : CblasNoTrans,
                            product.transposeB ? CblasTrans : CblasNoTrans,
                            Int32(product.m), Int32(product.n), Int32(product.k), 1,
                            set[0] + Replay.offset(product.a, slice: slice), Replay.leadingDimension(product.a),
                            set[1] + Replay.offset(product.b, slice: slice), Replay.leadingDimension(product.b), 0,
                            set[2] + Replay.offset(product.c, slice: slice), Replay.leadingDimension(product.c))
            }
        }
        let time = Measure.now() - start
        Parallelism.setThreadCount(Parallelism.threadCount)
        usleep(250_000)
        return time
    }

    static func elements(_ operand: Product.Operand) -> Int {
        switch operand {
        case let .dense(rows, columns): return rows * columns
        case let .head(length): return OpsBench.batch * length * OpsBench.width
        case let .slice(rows, columns): return OpsBench.batch * OpsBench.heads * rows * columns
        }
    }

    static func leadingDimension(_ operand: Product.Operand) -> Int32 {
        switch operand {
        case let .dense(_, columns): return Int32(columns)
        case .head: return Int32(OpsBench.width)
        case let .slice(_, columns): return Int32(columns)
        }
    }

    static func offset(_ operand: Product.Operand, slice: Int) -> Int {
        let heads = OpsBench.heads
        switch operand {
        case .dense: return 0
        case let .head(length): return (slice / heads) * length * OpsBench.width + (slice % heads) * (OpsBench.width / heads)
        case let .slice(rows, columns): return slice * rows * columns
        }
    }
}
