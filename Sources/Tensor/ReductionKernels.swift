import CVectorKernels

/// Sums, means and maxima over all elements or along one axis.
public enum Reduction {
    /// The sum of all elements, accumulated in Double so large tensors keep their precision.
    public static func sum(_ x: Tensor) -> Float {
        let profiled = Profiler.enter(.reduction)
        defer { Profiler.exit(profiled) }
        return x.withUnsafeBufferPointer { p in
            var total: Double = 0
            for value in p { total += Double(value) }
            return Float(total)
        }
    }

    /// The sum along `axis`; the axis is removed, or kept with extent 1 when `keepingDimension`.
    public static func sum(_ x: Tensor, axis: Int, keepingDimension: Bool = false) -> Tensor {
        let profiled = Profiler.enter(.reduction)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(x.shape, axis: axis, "sum(axis:)")
        var outShape = x.shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        // Tasks are (outer index, block of columns): a column sum of one tall matrix (a bias gradient)
        // splits across threads too. Every element is still summed in the order of `axis`, so the
        // bits do not depend on the split.
        let columnBlock = outer < 4 && inner >= 128 ? 64 : Swift.max(inner, 1)
        let blocks = (inner + columnBlock - 1) / columnBlock
        return Tensor(shape: outShape) { out in
            x.withUnsafeBufferPointer { input in
                let grain = Swift.max(1, Parallelism.elementwiseGrain / Swift.max(1, extent * columnBlock))
                Parallelism.forEachChunk(count: outer * blocks, grain: grain) { tasks in
                    for task in tasks {
                        let o = task / blocks
                        let first = (task % blocks) * columnBlock
                        let columns = Swift.min(inner, first + columnBlock) - first
                        let row = out.baseAddress! + o * inner + first
                        let top = input.baseAddress! + o * extent * inner + first
                        if GEMM.avx512Available {
                            column_sums_avx512(top, extent, columns, inner, row)
                            continue
                        }
                        for i in 0..<columns { row[i] = 0 }
                        for e in 0..<extent {
                            let source = top + e * inner
                            for i in 0..<columns { row[i] += source[i] }
                        }
                    }
                }
            }
        }
    }

    /// The gradient of `sum(x, axis:)`: `gradient` (reduced shape) copied along `axis` of `shape`.
    public static func expand(_ gradient: Tensor, alongAxis axis: Int, of shape: [Int], scale: Float = 1) -> Tensor {
        let profiled = Profiler.enter(.reduction)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(shape, axis: axis, "expand(alongAxis:)")
        precondition(gradient.count == outer * inner,
                     "expand(alongAxis:): gradient \(gradient.shape) does not match \(shape) reduced on axis \(axis)")
        return Tensor(shape: shape) { out in
            gradient.withUnsafeBufferPointer { g in
                for o in 0..<outer {
                    for e in 0..<extent {
                        let target = out.baseAddress! + (o * extent + e) * inner
                        for i in 0..<inner { target[i] = g[o * inner + i] * scale }
                    }
                }
            }
        }
    }

    /// The maximum along `axis` and the index (along `axis`) where it is reached (first on ties).
    public static func max(_ x: Tensor, axis: Int, keepingDimension: Bool = false) -> (values: Tensor, indices: [Int]) {
        let profiled = Profiler.enter(.reduction)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(x.shape, axis: axis, "max(axis:)")
        precondition(extent > 0, "max(axis:): empty axis \(axis) in shape \(x.shape)")
        var outShape = x.shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        var indices = [Int](repeating: 0, count: outer * inner)
        let values = Tensor(shape: outShape) { out in
            x.withUnsafeBufferPointer { input in
                for o in 0..<outer {
                    for i in 0..<inner {
                        var best = input[o * extent * inner + i]
                        var bestIndex = 0
                        for e in 1..<Swift.max(1, extent) where input[(o * extent + e) * inner + i] > best {
                            best = input[(o * extent + e) * inner + i]
                            bestIndex = e
                        }
                        out[o * inner + i] = best
                        indices[o * inner + i] = bestIndex
                    }
                }
            }
        }
        return (values, indices)
    }

    /// The gradient of `max(x, axis:)`: each reduced gradient routed to its arg-max position.
    public static func scatterMax(_ gradient: Tensor, indices: [Int], axis: Int, of shape: [Int]) -> Tensor {
        let profiled = Profiler.enter(.reduction)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(shape, axis: axis, "max backward")
        precondition(gradient.count == outer * inner && indices.count == outer * inner,
                     "max backward: gradient \(gradient.shape) does not match \(shape) reduced on axis \(axis)")
        var result = Tensor(zeros: shape)
        result.withUnsafeMutableBufferPointer { out in
            gradient.withUnsafeBufferPointer { g in
                for o in 0..<outer {
                    for i in 0..<inner {
                        out[(o * extent + indices[o * inner + i]) * inner + i] = g[o * inner + i]
                    }
                }
            }
        }
        return result
    }
}
