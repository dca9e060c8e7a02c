import CVectorKernels
import Tensor

/// PReLU with one slope shared by every element (`slope` of shape `[1]`, PyTorch's `nn.PReLU()`):
/// `x` where positive, else `slope * x`. The same function as `prelu(_:slope:)` with a `[1]` slope,
/// with forward and backward split across threads: it sits on the feed-forward activations of every
/// transformer layer. The slope gradient is reduced per fixed-size chunk and then over chunks in order,
/// so its bits do not depend on the thread count.
public func sharedSlopePReLU(_ x: Variable, slope: Variable) -> Variable {
    sharedSlopePReLU(x, slope: slope, dropout: 0, seed: 0, rows: nil)
}

/// `dropout(prelu(x))` in one op: the activation of a feed-forward block and the dropout after it, with the
/// mask applied on the fly (drawn from `generator` when `p > 0`, as `dropout` would draw it, and regenerated
/// backward), so no dropped copy of the hidden activation is made. With `rows`, the whole batch's mask of
/// those rows (see `BatchRows`).
public func sharedSlopePReLU(_ x: Variable, slope: Variable, dropout p: Float, generator: inout SeededGenerator,
                             rows: BatchRows? = nil) -> Variable {
    sharedSlopePReLU(x, slope: slope, dropout: p, seed: p > 0 ? generator.next() : 0, rows: rows)
}

private func sharedSlopePReLU(_ x: Variable, slope: Variable, dropout p: Float, seed: UInt64, rows: BatchRows?) -> Variable {
    checkSameShape(slope.shape, [1], "sharedSlopePReLU slope")
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
    let a = slope.value.scalar
    let count = x.count
    let grain = Parallelism.elementwiseGrain
    let indexing = MaskIndexing(rows: rows, shape: x.shape)
    let vector = VectorKernels.enabled
    /// `body(range, mask)` over `range` in blocks with the dropout mask of each block, or once with a nil mask.
    func masked(_ range: Range<Int>, _ body: (Range<Int>, UnsafePointer<Float>?) -> Void) {
        if p > 0 {
            DropoutMask.forEachBlock(of: range, probability: p, seed: seed, indexing: indexing) { block, mask in body(block, mask) }
        } else {
            body(range, nil)
        }
    }
    let forwardProfile = Profiler.enter(.elementwise)
    let y = Tensor(shape: x.shape) { out in
        x.value.withUnsafeBufferPointer { input in
            Parallelism.forEachChunk(count: count, grain: grain) { range in
                masked(range) { block, mask in
                    if vector {
                        prelu_forward_avx512(input.baseAddress! + block.lowerBound, mask, block.count, a,
                                             out.baseAddress! + block.lowerBound)
                    } else if let mask {
                        for i in block {
                            let v = input[i]
                            out[i] = (v > 0 ? v : a * v) * mask[i - block.lowerBound]
                        }
                    } else {
                        for i in block {
                            let v = input[i]
                            out[i] = v > 0 ? v : a * v
                        }
                    }
                }
            }
        }
    }
    Profiler.exit(forwardProfile)
    return Variable.result(y, parents: [x, slope]) { g in
        let backwardProfile = Profiler.enter(.elementwise)
        let chunks = (count + grain - 1) / grain
        var partial = [Double](repeating: 0, count: max(chunks, 1))
        let dx = Tensor(shape: x.shape) { out in
            x.value.withUnsafeBufferPointer { input in
                g.withUnsafeBufferPointer { gp in
                    partial.withUnsafeMutableBufferPointer { sums in
                        Parallelism.forEachChunk(count: count, grain: grain) { range in
                            var total: Float = 0
                            masked(range) { block, mask in
                                let start = block.lowerBound
                                total += vector
                                    ? prelu_backward_avx512(input.baseAddress! + start, gp.baseAddress! + start, mask, block.count, a,
                                                            out.baseAddress! + start)
                                    : preluBackward(input: input.baseAddress!, gradient: gp.baseAddress!, mask: mask,
                                                    slope: a, block: block, into: out.baseAddress!)
                            }
                            sums[range.lowerBound / grain] = Double(total)
                        }
                    }
                }
            }
        }
        Profiler.exit(backwardProfile)
        if x.requiresGrad { x.accumulateGradient(dx) }
        if slope.requiresGrad { slope.accumulateGradient(Tensor(shape: [1], data: [Float(partial.reduce(0, +))])) }
    }
}

/// The input gradient of `dropout(prelu(x))` over `block` (`mask` holds the block's mask values, or nil without
/// dropout) written to `out`, returning the block's share of the slope gradient, `sum(gradient * x)` over `x <= 0`.
/// Eight lanes at a time: the slope sum is kept in eight partial sums (a serial float sum would cost four cycles
/// an element), in a fixed order, so its bits do not depend on the thread count.
@inline(__always)
private func preluBackward(input: UnsafePointer<Float>, gradient gp: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                           slope a: Float, block: Range<Int>, into out: UnsafeMutablePointer<Float>) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = block.lowerBound
    let first = block.lowerBound
    while i + 8 <= block.upperBound {
        let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
        var g = UnsafeRawPointer(gp + i).loadUnaligned(as: SIMD8<Float>.self)
        if let mask { g *= UnsafeRawPointer(mask + (i - first)).loadUnaligned(as: SIMD8<Float>.self) }
        let positive = v .> 0
        UnsafeMutableRawPointer(out + i).storeBytes(of: g.replacing(with: a * g, where: .!positive), as: SIMD8<Float>.self)
        lanes += (g * v).replacing(with: 0, where: positive)
        i += 8
    }
    var total = lanes.sum()
    while i < block.upperBound {
        let v = input[i], g = mask.map { gp[i] * $0[i - first] } ?? gp[i]
        out[i] = v > 0 ? g : a * g
        total += v > 0 ? 0 : g * v
        i += 1
    }
    return total
}
