/// The element-wise work of TD-DETR's temporal dynamics branch, one pass each: the clip-to-clip differences
/// of a sequence (otherwise a broadcast, a slice, a concatenation and a subtraction forward, and a negation, a
/// split, a padding and a reduction backward) and the mix of the branch into the video tokens (otherwise a
/// dropout, three scalings and two sums, and as many passes back). Each element goes through the operations of
/// the chain it replaces, in their order, so a kernel gives the chain's bits.
public enum TemporalDynamicsKernels {
    /// `tokens` `[B, L, D]` differenced along time: `tokens[b, 0] - (0 + start)` (the chain builds the start
    /// row as zeros plus the token), then `tokens[b, t] - tokens[b, t - 1]`. `start`: `[1, 1, D]`.
    public static func differences(_ tokens: Tensor, start: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        let (rows, length, width) = sequenceShape(tokens.shape, "temporal differences")
        checkSameShape(start.shape, [1, 1, width], "temporal differences: start token vs tokens \(tokens.shape)")
        return Tensor(shape: tokens.shape) { out in
            tokens.withUnsafeBufferPointer { input in
                start.withUnsafeBufferPointer { first in
                    Parallelism.forEachChunk(count: rows, grain: Parallelism.rowGrain(width)) { range in
                        for row in range {
                            let line = input.baseAddress! + row * width, target = out.baseAddress! + row * width
                            if row % length == 0 {
                                for j in 0..<width { target[j] = line[j] - (0 + first[j]) }
                            } else {
                                let previous = line - width
                                for j in 0..<width { target[j] = line[j] - previous[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Gradients of `differences`: the tokens' `g[b, t] - g[b, t + 1]` (`g[b, L - 1]` for the last clip), the
    /// start token's `-g[0, 0] - g[1, 0] - ...` summed over the batch in order.
    public static func differencesBackward(outputGradient g: Tensor) -> (tokens: Tensor, start: Tensor) {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        let (rows, length, width) = sequenceShape(g.shape, "temporal differences backward")
        var start = Tensor(zeros: [1, 1, width])
        let tokens = Tensor(shape: g.shape) { out in
            g.withUnsafeBufferPointer { gradient in
                Parallelism.forEachChunk(count: rows, grain: Parallelism.rowGrain(width)) { range in
                    for row in range {
                        let line = gradient.baseAddress! + row * width, target = out.baseAddress! + row * width
                        if row % length == length - 1 {
                            for j in 0..<width { target[j] = line[j] }
                        } else {
                            let next = line + width
                            for j in 0..<width { target[j] = line[j] + -next[j] }
                        }
                    }
                }
                start.withUnsafeMutableBufferPointer { sum in
                    for row in stride(from: 0, to: rows, by: length) {
                        let line = gradient.baseAddress! + row * width
                        for j in 0..<width { sum[j] += -line[j] }
                    }
                }
            }
        }
        return (tokens, start)
    }

    /// Where the mix's weight `beta` applies.
    public enum MixOrder: Sendable {
        /// `beta * (video + dropout(attended)) + (1 - beta) * dynamics` (TD-DETR's paper).
        case weightedResidual
        /// `beta * video + (1 - beta) * dynamics + dropout(attended)` (the authors' code).
        case weightedVideo
    }

    /// The mix of `video`, the text-attended video `attended` (dropped with probability `p` under the mask for
    /// `seed`; with `rows`, the whole batch's mask of those rows) and the text-attended dynamics `dynamics`, all
    /// of one shape, in the order `order` says.
    public static func mix(video: Tensor, attended: Tensor, dynamics: Tensor, beta: Float, order: MixOrder,
                           dropout p: Float, seed: UInt64, rows batchRows: BatchRows? = nil) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        checkSameShape(attended.shape, video.shape, "dynamics mix: attended vs video")
        checkSameShape(dynamics.shape, video.shape, "dynamics mix: dynamics vs video")
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let indexing = MaskIndexing(rows: batchRows, shape: video.shape)
        let rest = 1 - beta
        return Tensor(shape: video.shape) { out in
            video.withUnsafeBufferPointer { x in
            attended.withUnsafeBufferPointer { y in
            dynamics.withUnsafeBufferPointer { z in
                forEachMaskedBlock(count: x.count, probability: p, seed: seed, indexing: indexing) { block, mask in
                    let (a, b, c) = (x.baseAddress! + block.lowerBound, y.baseAddress! + block.lowerBound, z.baseAddress! + block.lowerBound)
                    let target = out.baseAddress! + block.lowerBound
                    switch order {
                    case .weightedResidual:
                        for i in 0..<block.count { target[i] = ((a[i] + b[i] * mask[i]) * beta + 0) + (c[i] * rest + 0) }
                    case .weightedVideo:
                        for i in 0..<block.count { target[i] = ((a[i] * beta + 0) + (c[i] * rest + 0)) + b[i] * mask[i] }
                    }
                }
            }}}
        }
    }

    /// Gradients of `mix` with respect to the video, the attended video and the dynamics.
    public static func mixBackward(outputGradient g: Tensor, beta: Float, order: MixOrder, dropout p: Float, seed: UInt64,
                                   rows batchRows: BatchRows? = nil) -> (video: Tensor, attended: Tensor, dynamics: Tensor) {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        let indexing = MaskIndexing(rows: batchRows, shape: g.shape)
        let rest = 1 - beta
        var attended = Tensor(shape: g.shape) { _ in }
        var dynamics = Tensor(shape: g.shape) { _ in }
        let video = Tensor(shape: g.shape) { dx in
            g.withUnsafeBufferPointer { gradient in
            attended.withUnsafeMutableBufferPointer { dy in
            dynamics.withUnsafeMutableBufferPointer { dz in
                forEachMaskedBlock(count: gradient.count, probability: p, seed: seed, indexing: indexing) { block, mask in
                    let source = gradient.baseAddress! + block.lowerBound
                    let (a, b, c) = (dx.baseAddress! + block.lowerBound, dy.baseAddress! + block.lowerBound, dz.baseAddress! + block.lowerBound)
                    for i in 0..<block.count {
                        a[i] = source[i] * beta + 0
                        c[i] = source[i] * rest + 0
                    }
                    // The attended video's gradient is the one reaching its dropout: the weighted one inside
                    // the residual, the output's own outside it.
                    switch order {
                    case .weightedResidual: for i in 0..<block.count { b[i] = a[i] * mask[i] }
                    case .weightedVideo: for i in 0..<block.count { b[i] = source[i] * mask[i] }
                    }
                }
            }}}
        }
        return (video, attended, dynamics)
    }

    /// Calls `body` over `0..<count` in parallel blocks with each block's dropout mask; without dropout the
    /// mask is ones (`y * 1` is `y`, bit for bit, so one loop serves both).
    @inline(__always)
    private static func forEachMaskedBlock(count: Int, probability p: Float, seed: UInt64, indexing: MaskIndexing?,
                                           _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        Parallelism.forEachChunk(count: count, grain: Parallelism.elementwiseGrain) { range in
            if p > 0 {
                DropoutMask.forEachBlock(of: range, probability: p, seed: seed, indexing: indexing, body)
                return
            }
            let blockSize = 4096
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.min(blockSize, Swift.max(range.count, 1))) { ones in
                ones.initialize(repeating: 1)
                var start = range.lowerBound
                while start < range.upperBound {
                    let block = start..<Swift.min(range.upperBound, start + blockSize)
                    body(block, UnsafePointer(ones.baseAddress!))
                    start = block.upperBound
                }
            }
        }
    }

    /// Rows, sequence length and width of a `[B, L, D]` tensor, as rows of `D`.
    private static func sequenceShape(_ shape: [Int], _ operation: String) -> (rows: Int, length: Int, width: Int) {
        precondition(shape.count == 3, "\(operation): needs [batch, length, width], got \(shape)")
        return (shape[0] * shape[1], max(1, shape[1]), shape[2])
    }
}
