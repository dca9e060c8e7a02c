import AVX512Kernels
import Foundation

/// Softmax and log-softmax along one axis, with their backward passes.
public enum Softmax {
    /// `softmax(x)` along `axis`, computed stably (the maximum is subtracted first).
    public static func forward(_ x: Tensor, axis: Int) -> Tensor {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        return apply(x, axis: axis, logarithmic: false)
    }

    /// `log(softmax(x))` along `axis`, computed as `x - logsumexp(x)`.
    public static func logForward(_ x: Tensor, axis: Int) -> Tensor {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        return apply(x, axis: axis, logarithmic: true)
    }

    /// Gradient of softmax given its output `y`: `dx = y * (dy - sum(dy * y))` along `axis`.
    public static func backward(outputGradient dy: Tensor, output y: Tensor, axis: Int) -> Tensor {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, y.shape, "softmax backward")
        let (outer, extent, inner) = axisSplit(y.shape, axis: axis, "softmax backward")
        return Tensor(shape: y.shape) { out in
            dy.withUnsafeBufferPointer { g in
                y.withUnsafeBufferPointer { p in
                    Parallelism.forEachChunk(count: outer * inner, grain: 256) { range in
                        for line in range {
                            let base = (line / inner) * extent * inner + line % inner
                            var dot: Float = 0
                            for e in 0..<extent { dot += g[base + e * inner] * p[base + e * inner] }
                            for e in 0..<extent {
                                let at = base + e * inner
                                out[at] = p[at] * (g[at] - dot)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Gradient of log-softmax given its output `y`: `dx = dy - softmax * sum(dy)` along `axis`.
    public static func logBackward(outputGradient dy: Tensor, output y: Tensor, axis: Int) -> Tensor {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, y.shape, "log-softmax backward")
        let (outer, extent, inner) = axisSplit(y.shape, axis: axis, "log-softmax backward")
        return Tensor(shape: y.shape) { out in
            dy.withUnsafeBufferPointer { g in
                y.withUnsafeBufferPointer { logP in
                    Parallelism.forEachChunk(count: outer * inner, grain: 256) { range in
                        for line in range {
                            let base = (line / inner) * extent * inner + line % inner
                            var total: Float = 0
                            for e in 0..<extent { total += g[base + e * inner] }
                            for e in 0..<extent {
                                let at = base + e * inner
                                out[at] = g[at] - Foundation.exp(logP[at]) * total
                            }
                        }
                    }
                }
            }
        }
    }

    private static func apply(_ x: Tensor, axis: Int, logarithmic: Bool) -> Tensor {
        let (outer, extent, inner) = axisSplit(x.shape, axis: axis, logarithmic ? "logSoftmax" : "softmax")
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: outer * inner, grain: 256) { range in
                    for line in range {
                        let base = (line / inner) * extent * inner + line % inner
                        softmaxLine(input.baseAddress! + base, out.baseAddress! + base,
                                    count: extent, stride: inner, logarithmic: logarithmic)
                    }
                }
            }
        }
    }

    /// Softmax of `rows` contiguous rows of `count` values, in place (attention scores): the bits `softmaxLine`
    /// gives each row, on 512-bit vectors where the CPU has them (`Softmax512`).
    public static func contiguousRowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, count: Int) {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        if GEMM.avx512Available {
            Softmax512.rows(x, rows: rows, count: count)
            return
        }
        for r in 0..<rows { softmaxLine(x + r * count, x + r * count, count: count, stride: 1, logarithmic: false) }
    }

    /// Softmax (or log-softmax) of `count` values spaced `stride` apart. `-infinity` entries get
    /// probability 0; a line that is entirely `-infinity` yields zeros (not NaN), so a fully masked
    /// row contributes nothing.
    @inline(__always)
    public static func softmaxLine(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                   count: Int, stride: Int, logarithmic: Bool) {
        let profiled = Profiler.enter(.softmax)
        defer { Profiler.exit(profiled) }
        if stride == 1 && !logarithmic {
            // Contiguous rows (attention scores, last-axis softmax): vector max and exp.
            let maximum = RowMath.maximum(input, count: count)
            if maximum == -Float.infinity {
                for e in 0..<count { output[e] = 0 }
                return
            }
            let scale = 1 / RowMath.exponentials(input, minus: maximum, into: output, count: count)
            for e in 0..<count { output[e] *= scale }
            return
        }
        var maximum = -Float.infinity
        for e in 0..<count { maximum = Swift.max(maximum, input[e * stride]) }
        if maximum == -Float.infinity {
            for e in 0..<count { output[e * stride] = logarithmic ? -Float.infinity : 0 }
            return
        }
        var total: Float = 0
        if logarithmic {
            for e in 0..<count { total += Foundation.exp(input[e * stride] - maximum) }
            let logTotal = Foundation.log(total) + maximum
            for e in 0..<count { output[e * stride] = input[e * stride] - logTotal }
        } else {
            for e in 0..<count {
                let value = Foundation.exp(input[e * stride] - maximum)
                output[e * stride] = value
                total += value
            }
            let scale = 1 / total
            for e in 0..<count { output[e * stride] *= scale }
        }
    }
}
