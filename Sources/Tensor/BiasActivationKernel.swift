import Foundation

/// The point-wise non-linearity a fused kernel applies.
public enum PointwiseActivation: Sendable, Equatable {
    case identity
    case relu
    /// The exact (erf-based) GELU.
    case gelu
}

/// `dropout(activation(x + bias))` over the rows of `x` (`[..., n]`, bias `[n]`) in one pass: the tail of
/// the first linear layer of a feed-forward block, which would otherwise be a bias pass, an activation,
/// a mask and a product, each reading and writing the whole hidden activation. The mask is applied on
/// the fly and never stored (see `DropoutMask`).
public enum BiasActivationDropout {
    /// What the backward pass needs besides the output.
    public struct Saved: Sendable {
        /// `x + bias` when the activation's derivative needs it (GELU); nil for ReLU and identity.
        public let preActivation: Tensor?
        public let activation: PointwiseActivation
        public let probability: Float
        public let seed: UInt64
        /// Set when `values` is a slice of a whole batch (see `BatchRows`).
        public let indexing: MaskIndexing?
    }

    /// Replaces `values` with `dropout(activation(values + bias))`, dropping with probability `p` under
    /// the mask for `seed` (with `rows`, the whole batch's mask of those rows).
    public static func forward(_ values: inout Tensor, bias: Tensor?, activation: PointwiseActivation,
                               dropout p: Float, seed: UInt64, rows: BatchRows? = nil) -> Saved {
        let profiled = Profiler.enter(.biasActivation)
        defer { Profiler.exit(profiled) }
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let width = values.shape.last ?? 1
        if let bias { checkSameShape(bias.shape, [width], "bias-activation bias vs input \(values.shape)") }
        let indexing = MaskIndexing(rows: rows, shape: values.shape)
        var preActivation: Tensor? = activation == .gelu ? Tensor(shape: values.shape) { _ in } : nil
        let zeroBias = Tensor(zeros: [bias == nil ? width : 0])
        values.withUnsafeMutableBufferPointer { v in
            (bias ?? zeroBias).withUnsafeBufferPointer { b in
                withOptionalMutablePointer(&preActivation) { pre in
                    let context = RowContext(values: v.baseAddress!, width: width, bias: b.baseAddress!,
                                             preActivation: pre, probability: p, seed: seed, indexing: indexing)
                    switch activation {
                    case .identity: forwardRows(context, v.count, IdentityActivation.self)
                    case .relu: forwardRows(context, v.count, ReLUActivation.self)
                    case .gelu: forwardRows(context, v.count, GELUActivation.self)
                    }
                }
            }
        }
        return Saved(preActivation: preActivation, activation: activation, probability: p, seed: seed, indexing: indexing)
    }

    /// The gradient with respect to `x + bias` (the pre-activation) given the output gradient and the
    /// output, and, when `biasGradient`, its sum over rows (the bias gradient), accumulated in fixed row
    /// chunks so the bits do not depend on the thread count.
    public static func backward(outputGradient dy: Tensor, output y: Tensor, saved: Saved,
                                biasGradient: Bool) -> (preActivation: Tensor, bias: Tensor?) {
        let profiled = Profiler.enter(.biasActivation)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, y.shape, "bias-activation backward")
        let width = y.shape.last ?? 1
        let rows = y.count / Swift.max(width, 1)
        let rowsPerChunk = Swift.max(1, Parallelism.elementwiseGrain / Swift.max(width, 1))
        let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
        var partials = [Float](repeating: 0, count: biasGradient ? chunks * width : 0)
        let keepScale = 1 / (1 - saved.probability)
        let (p, seed) = (saved.probability, saved.seed)
        let gradient = Tensor(shape: y.shape) { out in
            dy.withUnsafeBufferPointer { g in
            y.withUnsafeBufferPointer { output in
            partials.withUnsafeMutableBufferPointer { partial in
                withOptionalPointer(saved.preActivation) { pre in
                    Parallelism.forEachChunk(count: rows, grain: rowsPerChunk) { rowRange in
                        let elements = (rowRange.lowerBound * width)..<(rowRange.upperBound * width)
                        let target = out.baseAddress!, source = g.baseAddress!
                        switch saved.activation {
                        case .relu:
                            // dropout(relu(z)) > 0 exactly where z > 0 and the element was kept, where
                            // the derivative is the keep scale: the output alone decides, no mask needed.
                            let value = output.baseAddress!
                            for i in elements {
                                let scaled = source[i] * keepScale
                                target[i] = value[i] > 0 ? scaled : 0
                            }
                        case .identity:
                            forEachMaskedBlock(elements, probability: p, seed: seed, indexing: saved.indexing) { block, mask in
                                if let mask {
                                    for i in block { target[i] = source[i] * mask[i - block.lowerBound] }
                                } else {
                                    for i in block { target[i] = source[i] }
                                }
                            }
                        case .gelu:
                            let z = pre!
                            forEachMaskedBlock(elements, probability: p, seed: seed, indexing: saved.indexing) { block, mask in
                                if let mask {
                                    for i in block {
                                        target[i] = source[i] * mask[i - block.lowerBound] * GELUActivation.derivative(z[i])
                                    }
                                } else {
                                    for i in block { target[i] = source[i] * GELUActivation.derivative(z[i]) }
                                }
                            }
                        }
                        if biasGradient {
                            let sums = partial.baseAddress! + (rowRange.lowerBound / rowsPerChunk) * width
                            for row in rowRange {
                                let line = target + row * width
                                for j in 0..<width { sums[j] += line[j] }
                            }
                        }
                    }
                }
            }}}
        }
        guard biasGradient else { return (gradient, nil) }
        let bias = Tensor(shape: [width]) { out in
            partials.withUnsafeBufferPointer { partial in
                for j in 0..<width { out[j] = 0 }
                for chunk in 0..<chunks {
                    let sums = partial.baseAddress! + chunk * width
                    for j in 0..<width { out[j] += sums[j] }
                }
            }
        }
        return (gradient, bias)
    }

    /// Pointers one forward pass works on; shared read-only by the worker threads, which write
    /// disjoint rows.
    private struct RowContext: @unchecked Sendable {
        let values: UnsafeMutablePointer<Float>
        let width: Int
        /// `width` values (zeros when the layer has no bias).
        let bias: UnsafePointer<Float>
        let preActivation: UnsafeMutablePointer<Float>?
        let probability: Float
        let seed: UInt64
        let indexing: MaskIndexing?
    }

    private static func forwardRows<A: ActivationFunction>(_ c: RowContext, _ count: Int, _: A.Type) {
        let width = c.width
        let rows = count / Swift.max(width, 1)
        Parallelism.forEachChunk(count: rows, grain: Swift.max(1, Parallelism.elementwiseGrain / Swift.max(width, 1))) { rowRange in
            let elements = (rowRange.lowerBound * width)..<(rowRange.upperBound * width)
            forEachMaskedBlock(elements, probability: c.probability, seed: c.seed, indexing: c.indexing) { block, mask in
                // Walk the block row segment by row segment so the bias index is a plain counter.
                var start = block.lowerBound
                while start < block.upperBound {
                    let column = start % width
                    let length = Swift.min(block.upperBound - start, width - column)
                    let v = c.values + start
                    let b = c.bias + column
                    let maskSegment = mask.map { $0 + (start - block.lowerBound) }
                    if let pre = c.preActivation {
                        let z = pre + start
                        for i in 0..<length { z[i] = v[i] + b[i] }
                        if let maskSegment {
                            for i in 0..<length { v[i] = A.apply(z[i]) * maskSegment[i] }
                        } else {
                            for i in 0..<length { v[i] = A.apply(z[i]) }
                        }
                    } else if let maskSegment {
                        for i in 0..<length { v[i] = A.apply(v[i] + b[i]) * maskSegment[i] }
                    } else {
                        for i in 0..<length { v[i] = A.apply(v[i] + b[i]) }
                    }
                    start += length
                }
            }
        }
    }

    /// `body(block, mask)` over `elements` in blocks with the dropout mask of each block, or once with
    /// a nil mask when nothing is dropped.
    @inline(__always)
    private static func forEachMaskedBlock(_ elements: Range<Int>, probability p: Float, seed: UInt64,
                                           indexing: MaskIndexing?, _ body: (Range<Int>, UnsafePointer<Float>?) -> Void) {
        if p > 0 {
            DropoutMask.forEachBlock(of: elements, probability: p, seed: seed, indexing: indexing) { block, mask in body(block, mask) }
        } else {
            body(elements, nil)
        }
    }
}

/// A scalar activation, dispatched statically so the loops that apply it specialise.
protocol ActivationFunction {
    static func apply(_ x: Float) -> Float
}

enum IdentityActivation: ActivationFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { x }
}

enum ReLUActivation: ActivationFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { x > 0 ? x : 0 }
}

enum GELUActivation: ActivationFunction {
    /// `x * Phi(x)`.
    @inline(__always) static func apply(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    /// `Phi(x) + x * phi(x)`.
    @inline(__always) static func derivative(_ x: Float) -> Float {
        let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
        let pdf = Foundation.exp(-0.5 * x * x) * 0.39894228040143268
        return cdf + x * pdf
    }
}
