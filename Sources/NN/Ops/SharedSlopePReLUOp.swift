import Tensor

/// PReLU with one slope shared by every element (`slope` of shape `[1]`, PyTorch's `nn.PReLU()`):
/// `x` where positive, else `slope * x`. The same function as `prelu(_:slope:)` with a `[1]` slope,
/// with forward and backward split across threads: it sits on the feed-forward activations of every
/// transformer layer. The slope gradient is reduced per fixed-size chunk and then over chunks in order,
/// so its bits do not depend on the thread count.
public func sharedSlopePReLU(_ x: Variable, slope: Variable) -> Variable {
    checkSameShape(slope.shape, [1], "sharedSlopePReLU slope")
    let a = slope.value.scalar
    let count = x.count
    let grain = Parallelism.elementwiseGrain
    let y = Tensor(shape: x.shape) { out in
        x.value.withUnsafeBufferPointer { input in
            Parallelism.forEachChunk(count: count, grain: grain) { range in
                for i in range {
                    let v = input[i]
                    out[i] = v > 0 ? v : a * v
                }
            }
        }
    }
    return Variable.result(y, parents: [x, slope]) { g in
        let chunks = (count + grain - 1) / grain
        var partial = [Double](repeating: 0, count: max(chunks, 1))
        let dx = Tensor(shape: x.shape) { out in
            x.value.withUnsafeBufferPointer { input in
                g.withUnsafeBufferPointer { gp in
                    partial.withUnsafeMutableBufferPointer { sums in
                        Parallelism.forEachChunk(count: count, grain: grain) { range in
                            var total: Float = 0
                            for i in range {
                                let v = input[i]
                                if v > 0 {
                                    out[i] = gp[i]
                                } else {
                                    out[i] = a * gp[i]
                                    total += gp[i] * v
                                }
                            }
                            sums[range.lowerBound / grain] = Double(total)
                        }
                    }
                }
            }
        }
        if x.requiresGrad { x.accumulateGradient(dx) }
        if slope.requiresGrad { slope.accumulateGradient(Tensor(shape: [1], data: [Float(partial.reduce(0, +))])) }
    }
}
