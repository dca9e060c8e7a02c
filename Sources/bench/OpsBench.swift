import ArgumentParser
import CBLAS
import Foundation
import NN
import Tensor

/// The NN ops at the paper's QVHighlights shapes, each against bare `cblas_sgemm` calls of the same
/// shapes timed in the same run (ARCHITECTURE.md section 11).
///
/// For every op the bench lists the matrix products it issues (shapes, transposes, leading dimensions,
/// per-head slices) and replays exactly those products on bare `cblas_sgemm`, the per-head ones as a loop
/// of calls on OpenBLAS's own threading. The op's fraction of the sgemm rate is then the replay's time
/// over the op's time. Time outside BLAS is measured with `GEMM.Timing`, which times every
/// `cblas_sgemm` the op makes.
struct OpsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Linear, attention and encoder-layer speed at QVHighlights shapes against bare sgemm.")

    @Option(help: "Timed repetitions per figure (median reported).")
    var repeats = 15
    @Option(help: "Threads for OpenBLAS and the project's kernels (default: every active core).")
    var threads: Int?

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
        if let threads { Parallelism.setThreadCount(threads) }
        let (batch, clips, tokens, width, heads) = (Self.batch, Self.clips, Self.tokens, Self.width, Self.heads)
        let rows = batch * clips
        print("ops: batch \(batch), \(clips) clips, \(tokens) tokens, d \(width), \(heads) heads, FFN \(Self.feedForward), "
              + "input \(Self.videoWidth); \(Parallelism.threadCount) threads; median of \(repeats)")
        print(Measure.environmentLine())
        print("anchor: bare cblas_sgemm of each op's own products (same shapes, transposes, leading dimensions), same run")
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
            let forward = Measure.median(repeats: repeats) { _ = layer(x) }
            let backward = medianBackward { () -> Variable in
                layer.zeroGrad()
                x.zeroGrad()
                return layer(x)
            } upstream: { upstream }
            let bareForward = Product.replayTime(products.forward, repeats: repeats)
            let bareBackward = Product.replayTime(products.backward, repeats: repeats)
            let (forwardFlops, backwardFlops) = (Product.flops(products.forward), Product.flops(products.backward))
            let what = entry.inputGradient ? "input and weight gradients" : "weight gradient (the input is data)"
            print(String(format: "%@ %d -> %d: forward %.2f ms, %.1f GFLOP/s (sgemm %.1f); backward, %@, %.2f ms, %.1f GFLOP/s (sgemm %.1f)",
                         entry.name, entry.inFeatures, entry.outFeatures, forward * 1e3, forwardFlops / forward / 1e9,
                         forwardFlops / bareForward / 1e9, what, backward * 1e3, backwardFlops / backward / 1e9,
                         backwardFlops / bareBackward / 1e9))
            figures += [
                ("ops.\(entry.name).fwd.gflops", forwardFlops / forward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).fwd.sgemm_gflops", forwardFlops / bareForward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).fwd.sgemm_fraction", bareForward / forward, "x", 2),
                ("ops.\(entry.name).bwd.gflops", backwardFlops / backward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).bwd.sgemm_gflops", backwardFlops / bareBackward / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).bwd.sgemm_fraction", bareBackward / backward, "x", 2),
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
            let time = Measure.median(repeats: repeats, step)
            let bare = Product.replayTime(entry.products, repeats: repeats)
            let flops = Product.flops(entry.products)
            print(String(format: "%@: forward + backward %.1f ms, %.1f GFLOP/s; bare sgemm of its products %.1f ms, %.1f GFLOP/s",
                         entry.label, time * 1e3, flops / time / 1e9, bare * 1e3, flops / bare / 1e9))
            figures += [
                ("ops.\(entry.name).fwd_bwd.ms", time * 1e3, "ms", 1),
                ("ops.\(entry.name).fwd_bwd.gflops", flops / time / 1e9, "GFLOP/s", 1),
                ("ops.\(entry.name).sgemm_fraction", bare / time, "x", 2),
            ]
            if entry.name == "encoder_layer" {
                let share = outsideBLASShare(step)
                print(String(format: "encoder layer: %.0f%% of core time outside cblas_sgemm (GEMM.Timing counts every call); "
                             + "subtracting the bare replay instead gives %.0f%%", share * 100, (1 - bare / time) * 100))
                figures.append(("ops.encoder_layer.outside_blas_share", share, "x", 2))
            }
        }
        for (name, value, unit, digits) in figures { Measure.figure(name, value, unit, digits: digits) }
    }

    /// The median time of `backward(gradient:)` alone, rebuilding the graph with `setup` before each run.
    private func medianBackward(_ setup: () -> Variable, upstream: () -> Tensor) -> Double {
        let gradient = upstream()
        setup().backward(gradient: gradient)
        var times: [Double] = []
        for _ in 0..<repeats {
            let output = setup()
            let start = Measure.now()
            output.backward(gradient: gradient)
            times.append(Measure.now() - start)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// The share of core time spent outside `cblas_sgemm` over `repeats` runs of `step`.
    private func outsideBLASShare(_ step: () -> Void) -> Double {
        var wall = 0.0
        GEMM.Timing.start()
        for _ in 0..<repeats {
            let start = Measure.now()
            step()
            wall += Measure.now() - start
        }
        let (coreSeconds, _) = GEMM.Timing.stop()
        return 1 - coreSeconds / (wall * Double(Parallelism.threadCount))
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

    /// The median time of running `products` once each on bare `cblas_sgemm`, on buffers of random
    /// values allocated per product.
    static func replayTime(_ products: [Product], repeats: Int) -> Double {
        let (width, heads) = (OpsBench.width, OpsBench.heads)
        let batch = OpsBench.batch
        func elements(_ operand: Operand) -> Int {
            switch operand {
            case let .dense(rows, columns): return rows * columns
            case let .head(length): return batch * length * width
            case let .slice(rows, columns): return batch * heads * rows * columns
            }
        }
        func leadingDimension(_ operand: Operand) -> Int32 {
            switch operand {
            case let .dense(_, columns): return Int32(columns)
            case .head: return Int32(width)
            case let .slice(_, columns): return Int32(columns)
            }
        }
        func offset(_ operand: Operand, slice: Int) -> Int {
            switch operand {
            case .dense: return 0
            case let .head(length): return (slice / heads) * length * width + (slice % heads) * (width / heads)
            case let .slice(rows, columns): return slice * rows * columns
            }
        }
        var generator = SeededGenerator(seed: 11)
        let buffers = products.map { product in
            [product.a, product.b, product.c].map { operand -> UnsafeMutablePointer<Float> in
                let count = elements(operand)
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
                for i in 0..<count { buffer[i] = generator.nextUniform(in: -1, 1) }
                return buffer
            }
        }
        defer { for set in buffers { for buffer in set { buffer.deallocate() } } }
        return Measure.median(repeats: repeats) {
            for (product, set) in zip(products, buffers) {
                for slice in 0..<product.count {
                    cblas_sgemm(CblasRowMajor,
                                product.transposeA ? CblasTrans : CblasNoTrans,
                                product.transposeB ? CblasTrans : CblasNoTrans,
                                Int32(product.m), Int32(product.n), Int32(product.k), 1,
                                set[0] + offset(product.a, slice: slice), leadingDimension(product.a),
                                set[1] + offset(product.b, slice: slice), leadingDimension(product.b), 0,
                                set[2] + offset(product.c, slice: slice), leadingDimension(product.c))
                }
            }
        }
    }
}
