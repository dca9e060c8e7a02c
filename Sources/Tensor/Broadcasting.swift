/// NumPy broadcasting rules for element-wise ops and the matching gradient reduction.
public enum Broadcasting {
    /// The broadcast shape of `a` and `b` (trailing dimensions aligned; 1 stretches).
    public static func shape(_ a: [Int], _ b: [Int], _ operation: @autoclosure () -> String = "broadcast") -> [Int] {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 {
                result[i] = da
            } else if da == 1 {
                result[i] = db
            } else {
                preconditionFailure("\(operation()): shapes \(a) and \(b) cannot be broadcast together")
            }
        }
        return result
    }

    /// Row-major strides of `shape` as seen from `outShape`: 0 on stretched dimensions.
    static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let rank = outShape.count
        var strides = [Int](repeating: 0, count: rank)
        var running = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            let j = i - (rank - shape.count)
            if j < 0 { break }
            strides[i] = shape[j] == 1 ? 0 : running
            running *= shape[j]
        }
        return strides
    }

    /// Calls `body(outOffset, aOffset, bOffset, runLength, aStep, bStep)` for every run along the last
    /// dimension of `outShape`, walking the other dimensions with an index counter. Only the
    /// per-run loop is generic; the inner element loop belongs to the caller.
    @inline(__always)
    static func forEachRun(outShape: [Int], aStrides: [Int], bStrides: [Int],
                           _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let rank = outShape.count
        if rank == 0 { body(0, 0, 0, 1, 0, 0); return }
        let run = outShape[rank - 1]
        let total = Tensor.elementCount(of: outShape)
        if total == 0 { return }
        var index = [Int](repeating: 0, count: rank)
        var aOffset = 0, bOffset = 0, outOffset = 0
        while outOffset < total {
            body(outOffset, aOffset, bOffset, run, aStrides[rank - 1], bStrides[rank - 1])
            outOffset += run
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                aOffset += aStrides[axis]
                bOffset += bStrides[axis]
                if index[axis] < outShape[axis] { break }
                aOffset -= aStrides[axis] * outShape[axis]
                bOffset -= bStrides[axis] * outShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Sums `gradient` (of a broadcast result's shape) down to `shape`, the shape of one operand:
    /// the backward of broadcasting.
    public static func sum(_ gradient: Tensor, toShape shape: [Int]) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        if gradient.shape == shape { return gradient }
        precondition(Broadcasting.shape(shape, gradient.shape) == gradient.shape,
                     "Broadcasting.sum: \(gradient.shape) does not reduce to \(shape)")
        let targetStrides = strides(of: shape, in: gradient.shape)
        var result = Tensor(zeros: shape)
        result.withUnsafeMutableBufferPointer { out in
            gradient.withUnsafeBufferPointer { g in
                forEachRun(outShape: gradient.shape, aStrides: targetStrides, bStrides: targetStrides) {
                    gOffset, tOffset, _, run, tStep, _ in
                    if tStep == 0 {
                        var total: Float = 0
                        for i in 0..<run { total += g[gOffset + i] }
                        out[tOffset] += total
                    } else {
                        for i in 0..<run { out[tOffset + i] += g[gOffset + i] }
                    }
                }
            }
        }
        return result
    }
}
