import CVectorKernels

/// Layer normalisation over the last dimension, with a per-feature scale and shift; and the residual
/// form of a post-norm transformer, `layerNorm(x + dropout(sublayer))`, in one pass.
public enum LayerNormKernel {
    /// What the forward pass saves for the backward pass: per-row mean and reciprocal std.
    public struct Saved: Sendable {
        public let mean: [Float]
        public let reciprocalStd: [Float]
        /// The dropout applied to the output (its mask is regenerated from the seed, never stored).
        public var probability: Float = 0
        public var seed: UInt64 = 0
        public var indexing: MaskIndexing? = nil
        /// Whether the norm was of `max(x, 0)` (`forward`'s `rectifiedInput`).
        public var rectifiedInput = false
    }

    /// `y = (x - mean) / sqrt(var + epsilon) * gamma + beta` per row of the last dimension, then dropped with
    /// probability `p` under the mask for `seed` (with `rows`, the whole batch's mask of those rows) in the same
    /// pass: `dropout(layerNorm(x))`, the head of the reference's input projection, without a dropped copy.
    /// `x`: `[..., D]`; `gamma`, `beta`: `[D]`. With `rectifiedInput`, the norm of `max(x, 0)`: a ReLU before the
    /// norm (between the blocks of the reference's input projection) applied to each row as it is read, with no
    /// rectified copy of `x`; the bits of `Activation.relu` then this.
    public static func forward(_ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float, dropout p: Float = 0, seed: UInt64 = 0,
                               rows batchRows: BatchRows? = nil, rectifiedInput: Bool = false) -> (output: Tensor, saved: Saved) {
        let profiled = Profiler.enter(.layerNorm)
        defer { Profiler.exit(profiled) }
        let width = x.shape.last ?? 1
        checkSameShape(gamma.shape, [width], "layerNorm gamma vs input \(x.shape)")
        checkSameShape(beta.shape, [width], "layerNorm beta vs input \(x.shape)")
        let rows = x.count / max(1, width)
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let indexing = MaskIndexing(rows: batchRows, shape: x.shape)
        var mean = [Float](repeating: 0, count: rows)
        var reciprocalStd = [Float](repeating: 0, count: rows)
        let vector = VectorKernels.enabled
        let output = Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                gamma.withUnsafeBufferPointer { g in
                    beta.withUnsafeBufferPointer { b in
                        mean.withUnsafeMutableBufferPointer { meanOut in
                            reciprocalStd.withUnsafeMutableBufferPointer { rstdOut in
                                Parallelism.forEachChunk(count: rows, grain: Parallelism.rowGrain(width)) { range in
                                    // The row's mask, then its rectified values.
                                    let scratch = (p > 0 ? width : 0) + (rectifiedInput ? width : 0)
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch) { mask in
                                        for row in range {
                                            var line = UnsafePointer(input.baseAddress! + row * width)
                                            if rectifiedInput {
                                                let rectified = mask.baseAddress! + (p > 0 ? width : 0)
                                                rectify(line, count: width, into: rectified)
                                                line = UnsafePointer(rectified)
                                            }
                                            if vector {
                                                if p > 0 {
                                                    DropoutMask.fill(mask.baseAddress!, range: (row * width)..<((row + 1) * width),
                                                                     probability: p, seed: seed, indexing: indexing)
                                                }
                                                layer_norm_row_avx512(line, width, epsilon, g.baseAddress!, b.baseAddress!,
                                                                      p > 0 ? mask.baseAddress! : nil, out.baseAddress! + row * width,
                                                                      meanOut.baseAddress! + row, rstdOut.baseAddress! + row)
                                                continue
                                            }
                                            let (mu, rstd) = moments(line, width: width, epsilon: epsilon)
                                            meanOut[row] = mu
                                            rstdOut[row] = rstd
                                            let target = out.baseAddress! + row * width
                                            if p > 0 {
                                                DropoutMask.fill(mask.baseAddress!, range: (row * width)..<((row + 1) * width), probability: p,
                                                                 seed: seed, indexing: indexing)
                                                for j in 0..<width { target[j] = ((line[j] - mu) * rstd * g[j] + b[j]) * mask[j] }
                                            } else {
                                                for j in 0..<width { target[j] = (line[j] - mu) * rstd * g[j] + b[j] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output, Saved(mean: mean, reciprocalStd: reciprocalStd, probability: p, seed: seed, indexing: indexing,
                              rectifiedInput: rectifiedInput))
    }

    /// `target[j] = max(x[j], 0)`, as `Activation.relu` makes it.
    @inline(__always)
    static func rectify(_ x: UnsafePointer<Float>, count: Int, into target: UnsafeMutablePointer<Float>) {
        for j in 0..<count {
            let v = x[j]
            target[j] = v > 0 ? v : 0
        }
    }

    /// `gradient[j] = x[j] > 0 ? gradient[j] : 0`, in place: the gradient through a ReLU, as
    /// `Activation.reluBackward` makes it.
    @inline(__always)
    static func rectifyGradient(_ gradient: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, count: Int) {
        for j in 0..<count {
            let g = gradient[j]
            gradient[j] = x[j] > 0 ? g : 0
        }
    }

    /// Gradients of layer norm with respect to the input, gamma and beta; without `inputGradient` (the input is
    /// data, e.g. raw video features) only gamma's and beta's are computed, and `input` is empty.
    public static func backward(outputGradient dy: Tensor, input x: Tensor, gamma: Tensor, saved: Saved,
                                inputGradient: Bool = true) -> (input: Tensor, gamma: Tensor, beta: Tensor) {
        let profiled = Profiler.enter(.layerNorm)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, x.shape, "layerNorm backward")
        let width = x.shape.last ?? 1
        let rows = x.count / max(1, width)
        var parameterGradients = ParameterGradients(rows: rows, width: width)
        let vector = VectorKernels.enabled
        let dx = Tensor(shape: inputGradient ? x.shape : [0]) { out in
            x.withUnsafeBufferPointer { input in
                dy.withUnsafeBufferPointer { g in
                    gamma.withUnsafeBufferPointer { gammaP in
                        parameterGradients.withPartials { partials in
                            Parallelism.forEachChunk(count: rows, grain: partials.rowsPerChunk) { range in
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: (saved.rectifiedInput ? 3 : 2) * width) { buffer in
                                    let xhat = buffer.baseAddress!, masked = buffer.baseAddress! + width
                                    let sums = partials.chunk(range.lowerBound)
                                    for row in range {
                                        let original = UnsafePointer(input.baseAddress! + row * width)
                                        var line = original
                                        if saved.rectifiedInput {
                                            rectify(original, count: width, into: buffer.baseAddress! + 2 * width)
                                            line = UnsafePointer(buffer.baseAddress! + 2 * width)
                                        }
                                        let target = inputGradient ? out.baseAddress! + row * width : nil
                                        let mu = saved.mean[row], rstd = saved.reciprocalStd[row]
                                        var gradient = UnsafePointer(g.baseAddress! + row * width)
                                        if vector && !inputGradient {
                                            // Normalised and masked in registers, row by row.
                                            var mask: UnsafePointer<Float>? = nil
                                            if saved.probability > 0 {
                                                DropoutMask.fill(masked, range: (row * width)..<((row + 1) * width),
                                                                 probability: saved.probability, seed: saved.seed, indexing: saved.indexing)
                                                mask = UnsafePointer(masked)
                                            }
                                            layer_norm_parameter_sums_avx512(line, mu, rstd, mask, gradient, width, sums)
                                            continue
                                        }
                                        if vector {
                                            layer_norm_normalize_avx512(line, width, mu, rstd, xhat)
                                            if saved.probability > 0 {
                                                DropoutMask.fill(masked, range: (row * width)..<((row + 1) * width),
                                                                 probability: saved.probability, seed: saved.seed, indexing: saved.indexing)
                                                multiply_avx512(masked, gradient, width, masked)
                                                gradient = UnsafePointer(masked)
                                            }
                                            layer_norm_row_backward_avx512(xhat, gradient, gammaP.baseAddress!, rstd, width,
                                                                           target!, sums)
                                            if saved.rectifiedInput { rectifyGradient(target!, input: original, count: width) }
                                            continue
                                        }
                                        for j in 0..<width { xhat[j] = (line[j] - mu) * rstd }
                                        if saved.probability > 0 {
                                            // The output was dropped: the gradient reaching the norm is the masked one.
                                            DropoutMask.fill(masked, range: (row * width)..<((row + 1) * width), probability: saved.probability,
                                                             seed: saved.seed, indexing: saved.indexing)
                                            for j in 0..<width { masked[j] *= gradient[j] }
                                            gradient = UnsafePointer(masked)
                                        }
                                        if inputGradient {
                                            rowBackward(xhat: UnsafePointer(xhat), gradient: gradient,
                                                        gamma: gammaP.baseAddress!, reciprocalStd: rstd, width: width,
                                                        into: target!, sums: sums)
                                            if saved.rectifiedInput { rectifyGradient(target!, input: original, count: width) }
                                        } else {
                                            for j in 0..<width {
                                                sums[j] += gradient[j] * xhat[j]
                                                sums[width + j] += gradient[j]
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (dGamma, dBeta) = parameterGradients.reduce()
        return (dx, dGamma, dBeta)
    }

    /// What the residual forward pass saves: the normalised sum, per-row reciprocal std, and the dropout
    /// that was applied to the sublayer (its mask is regenerated from the seed, never stored).
    public struct ResidualSaved: Sendable {
        /// `(s - mean) / std` of `s = x + dropout(sublayer)`, the shape of `x`.
        public let normalized: Tensor
        public let reciprocalStd: [Float]
        public let probability: Float
        public let seed: UInt64
        /// Set when the input is a slice of a whole batch (see `BatchRows`).
        public let indexing: MaskIndexing?
    }

    /// `layerNorm(x + dropout(sublayer))`, the residual connection of a post-norm transformer layer, in
    /// one pass over the rows: no sum, mask or dropped copy is materialised. `x` and `sublayer` share a
    /// shape `[..., D]`; the mask is the one `DropoutMask.make(shape:probability:seed:)` gives (with `rows`,
    /// the whole batch's mask of those rows).
    public static func residualForward(_ x: Tensor, sublayer: Tensor, dropout p: Float, seed: UInt64,
                                       rows: BatchRows? = nil, gamma: Tensor, beta: Tensor,
                                       epsilon: Float) -> (output: Tensor, saved: ResidualSaved) {
        let profiled = Profiler.enter(.layerNorm)
        defer { Profiler.exit(profiled) }
        checkSameShape(x.shape, sublayer.shape, "residual layerNorm: input vs sublayer")
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let width = x.shape.last ?? 1
        checkSameShape(gamma.shape, [width], "layerNorm gamma vs input \(x.shape)")
        checkSameShape(beta.shape, [width], "layerNorm beta vs input \(x.shape)")
        let indexing = MaskIndexing(rows: rows, shape: x.shape)
        let rows = x.count / max(1, width)
        var reciprocalStd = [Float](repeating: 0, count: rows)
        var normalized = Tensor(shape: x.shape) { _ in }
        let vector = VectorKernels.enabled
        let output = Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
            sublayer.withUnsafeBufferPointer { sub in
            normalized.withUnsafeMutableBufferPointer { xhatAll in
            reciprocalStd.withUnsafeMutableBufferPointer { rstdOut in
            gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                Parallelism.forEachChunk(count: rows, grain: Parallelism.rowGrain(width)) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { mask in
                        for row in range {
                            let offset = row * width
                            let line = input.baseAddress! + offset, added = sub.baseAddress! + offset
                            let sum = xhatAll.baseAddress! + offset
                            if vector {
                                if p > 0 {
                                    DropoutMask.fill(mask.baseAddress!, range: offset..<(offset + width), probability: p, seed: seed,
                                                     indexing: indexing)
                                }
                                rstdOut[row] = layer_norm_residual_row_avx512(line, added, p > 0 ? mask.baseAddress! : nil, width, epsilon,
                                                                              g.baseAddress!, b.baseAddress!, sum, out.baseAddress! + offset)
                                continue
                            }
                            if p > 0 {
                                DropoutMask.fill(mask.baseAddress!, range: offset..<(offset + width), probability: p, seed: seed,
                                                 indexing: indexing)
                                for j in 0..<width { sum[j] = line[j] + added[j] * mask[j] }
                            } else {
                                for j in 0..<width { sum[j] = line[j] + added[j] }
                            }
                            let (mu, rstd) = moments(UnsafePointer(sum), width: width, epsilon: epsilon)
                            rstdOut[row] = rstd
                            let target = out.baseAddress! + offset
                            for j in 0..<width {
                                let xhat = (sum[j] - mu) * rstd
                                sum[j] = xhat
                                target[j] = xhat * g[j] + b[j]
                            }
                        }
                    }
                }
            }}}}}}
        }
        return (output, ResidualSaved(normalized: normalized, reciprocalStd: reciprocalStd, probability: p, seed: seed,
                                      indexing: indexing))
    }

    /// Gradients of `residualForward` with respect to `x`, the sublayer, gamma and beta. Without dropout
    /// the sublayer's gradient is the same tensor as `x`'s.
    public static func residualBackward(outputGradient dy: Tensor, gamma: Tensor, saved: ResidualSaved)
        -> (input: Tensor, sublayer: Tensor, gamma: Tensor, beta: Tensor) {
        let profiled = Profiler.enter(.layerNorm)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, saved.normalized.shape, "residual layerNorm backward")
        let width = dy.shape.last ?? 1
        let rows = dy.count / max(1, width)
        let p = saved.probability
        var parameterGradients = ParameterGradients(rows: rows, width: width)
        var dSublayer: Tensor? = p > 0 ? Tensor(shape: dy.shape) { _ in } : nil
        let vector = VectorKernels.enabled
        let dx = Tensor(shape: dy.shape) { out in
            dy.withUnsafeBufferPointer { g in
            saved.normalized.withUnsafeBufferPointer { xhatAll in
            gamma.withUnsafeBufferPointer { gammaP in
            parameterGradients.withPartials { partials in
            withOptionalMutablePointer(&dSublayer) { subOut in
                Parallelism.forEachChunk(count: rows, grain: partials.rowsPerChunk) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { mask in
                        let sums = partials.chunk(range.lowerBound)
                        for row in range {
                            let offset = row * width
                            let target = out.baseAddress! + offset
                            if vector {
                                layer_norm_row_backward_avx512(xhatAll.baseAddress! + offset, g.baseAddress! + offset, gammaP.baseAddress!,
                                                               saved.reciprocalStd[row], width, target, sums)
                            } else {
                                rowBackward(xhat: xhatAll.baseAddress! + offset, gradient: g.baseAddress! + offset,
                                            gamma: gammaP.baseAddress!, reciprocalStd: saved.reciprocalStd[row], width: width,
                                            into: target, sums: sums)
                            }
                            if let subOut {
                                DropoutMask.fill(mask.baseAddress!, range: offset..<(offset + width), probability: p, seed: saved.seed,
                                                 indexing: saved.indexing)
                                let dropped = subOut + offset
                                if vector {
                                    multiply_avx512(target, mask.baseAddress!, width, dropped)
                                } else {
                                    for j in 0..<width { dropped[j] = target[j] * mask[j] }
                                }
                            }
                        }
                    }
                }
            }}}}}
        }
        let (dGamma, dBeta) = parameterGradients.reduce()
        return (dx, dSublayer ?? dx, dGamma, dBeta)
    }

    /// Mean and `1 / sqrt(variance + epsilon)` of one row (two passes: the row is in L1 by then).
    @inline(__always)
    static func moments(_ line: UnsafePointer<Float>, width: Int, epsilon: Float) -> (mean: Float, reciprocalStd: Float) {
        let mu = RowMath.sum(line, count: width) / Float(width)
        let squares = RowMath.squaredDeviations(line, mean: mu, count: width)
        return (mu, 1 / (squares / Float(width) + epsilon).squareRoot())
    }

    /// One row of the layer-norm backward pass: the input gradient into `target`, and this row's
    /// contributions to the gamma and beta gradients added to `sums` (`[gamma | beta]`, `2 * width`).
    @inline(__always)
    static func rowBackward(xhat: UnsafePointer<Float>, gradient grad: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                            reciprocalStd rstd: Float, width: Int, into target: UnsafeMutablePointer<Float>,
                            sums: UnsafeMutablePointer<Float>) {
        // Eight lanes of partial sums for the two row means (see RowMath), then a scalar tail.
        var dxhatLanes = SIMD8<Float>(), productLanes = SIMD8<Float>()
        var j = 0
        while j + 8 <= width {
            let g = RowMath.load(grad, j), x = RowMath.load(xhat, j)
            let dxhat = g * RowMath.load(gamma, j)
            dxhatLanes += dxhat
            productLanes += dxhat * x
            RowMath.store(RowMath.load(sums, j) + g * x, sums, j)
            RowMath.store(RowMath.load(sums, width + j) + g, sums, width + j)
            j += 8
        }
        var meanDxhat = RowMath.horizontalSum(dxhatLanes), meanDxhatXhat = RowMath.horizontalSum(productLanes)
        while j < width {
            let dxhat = grad[j] * gamma[j]
            meanDxhat += dxhat
            meanDxhatXhat += dxhat * xhat[j]
            sums[j] += grad[j] * xhat[j]
            sums[width + j] += grad[j]
            j += 1
        }
        meanDxhat /= Float(width)
        meanDxhatXhat /= Float(width)
        for j in 0..<width {
            target[j] = rstd * (grad[j] * gamma[j] - meanDxhat - xhat[j] * meanDxhatXhat)
        }
    }

    /// Gamma and beta gradients summed per fixed chunk of rows in parallel, then over chunks in order:
    /// the bits do not depend on the number of threads.
    struct ParameterGradients {
        let width: Int
        let rowsPerChunk: Int
        let chunks: Int
        /// Each chunk's sums, `2 * width` (gamma's then beta's), zeroed by the chunk itself as it starts (in its
        /// own thread's cache, instead of a zeroing pass over all of them before: at width 2818 the chunks are 11
        /// rows and their sums 10 MB).
        private var partials: [Float]

        init(rows: Int, width: Int) {
            self.width = width
            rowsPerChunk = Parallelism.rowGrain(width)
            let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
            self.chunks = chunks
            partials = [Float](unsafeUninitializedCapacity: chunks * 2 * width) { _, initialized in initialized = chunks * 2 * width }
        }

        /// The partial sums of the chunk that starts at `row`.
        struct Partials: @unchecked Sendable {
            let base: UnsafeMutablePointer<Float>
            let width: Int
            let rowsPerChunk: Int
            /// The sums of the chunk that starts at `row`, zeroed; called once per chunk, before its first row.
            func chunk(_ row: Int) -> UnsafeMutablePointer<Float> {
                let sums = base + (row / rowsPerChunk) * 2 * width
                sums.update(repeating: 0, count: 2 * width)
                return sums
            }
        }

        /// `body` must call `chunk` for every chunk (every kernel runs each chunk of rows through it).
        mutating func withPartials<R>(_ body: (Partials) -> R) -> R {
            let (width, rowsPerChunk) = (self.width, self.rowsPerChunk)
            return partials.withUnsafeMutableBufferPointer { body(Partials(base: $0.baseAddress!, width: width, rowsPerChunk: rowsPerChunk)) }
        }

        /// Gamma's and beta's gradients: each column's chunk sums added from zero in chunk order (blocks of
        /// columns side by side on the worker threads, which changes no column's order).
        func reduce() -> (gamma: Tensor, beta: Tensor) {
            let (width, chunks) = (self.width, self.chunks)
            var gamma = Tensor(zeros: [width])
            var beta = Tensor(zeros: [width])
            gamma.withUnsafeMutableBufferPointer { dg in
                beta.withUnsafeMutableBufferPointer { db in
                    partials.withUnsafeBufferPointer { p in
                        let columnGrain = max(64, Parallelism.elementwiseGrain / max(1, 2 * chunks))
                        Parallelism.forEachChunk(count: width, grain: columnGrain) { columns in
                            for chunk in 0..<chunks {
                                let sums = p.baseAddress! + chunk * 2 * width
                                for j in columns {
                                    dg[j] += sums[j]
                                    db[j] += sums[width + j]
                                }
                            }
                        }
                    }
                }
            }
            return (gamma, beta)
        }
    }
}
