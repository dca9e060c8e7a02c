/// 1-D convolution over time, channels last: input `[B, L, Cin]`, weight `[Cout, k, Cin]`, bias
/// `[Cout]`, output `[B, Lout, Cout]` with `Lout = (L + 2 * padding - k) / stride + 1`.
///
/// Lowered to one GEMM through an unfolded input (`[B * Lout, k * Cin]`, zero rows where the window
/// runs over the padding), which the backward pass reuses for the weight gradient.
public enum Conv1DKernel {
    /// Geometry of one convolution.
    public struct Geometry: Sendable, Equatable {
        public let batch, length, inChannels, outChannels, kernelSize, stride, padding: Int
        public var outputLength: Int { (length + 2 * padding - kernelSize) / stride + 1 }

        public init(input: [Int], weight: [Int], stride: Int, padding: Int) {
            precondition(input.count == 3, "conv1d: input must be [B, L, Cin], got \(input)")
            precondition(weight.count == 3 && weight[2] == input[2],
                         "conv1d: weight \(weight) must be [Cout, k, Cin] with Cin matching input \(input)")
            precondition(stride >= 1 && padding >= 0, "conv1d: stride \(stride) must be >= 1 and padding \(padding) >= 0")
            (batch, length, inChannels) = (input[0], input[1], input[2])
            (outChannels, kernelSize) = (weight[0], weight[1])
            self.stride = stride
            self.padding = padding
            precondition(length + 2 * padding >= kernelSize,
                         "conv1d: kernel \(kernelSize) longer than padded input \(length) + 2 x \(padding)")
        }
    }

    /// The unfolded input `[B * Lout, k * Cin]`.
    public static func unfold(_ x: Tensor, geometry g: Geometry) -> Tensor {
        let profiled = Profiler.enter(.convolution)
        defer { Profiler.exit(profiled) }
        let lout = g.outputLength, rowWidth = g.kernelSize * g.inChannels
        return Tensor(shape: [g.batch * lout, rowWidth]) { out in
            x.withUnsafeBufferPointer { src in
                for b in 0..<g.batch {
                    for t in 0..<lout {
                        let row = out.baseAddress! + (b * lout + t) * rowWidth
                        for j in 0..<g.kernelSize {
                            let position = t * g.stride - g.padding + j
                            let target = row + j * g.inChannels
                            if position >= 0 && position < g.length {
                                target.update(from: src.baseAddress! + (b * g.length + position) * g.inChannels, count: g.inChannels)
                            } else {
                                target.update(repeating: 0, count: g.inChannels)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output `[B, Lout, Cout]` and the unfolded input (kept for the weight gradient).
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> (output: Tensor, unfolded: Tensor) {
        let profiled = Profiler.enter(.convolution)
        defer { Profiler.exit(profiled) }
        let g = Geometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
        if let bias { checkSameShape(bias.shape, [g.outChannels], "conv1d bias") }
        let columns = unfold(x, geometry: g)
        let rows = g.batch * g.outputLength, rowWidth = g.kernelSize * g.inChannels
        let output = Tensor(shape: [g.batch, g.outputLength, g.outChannels]) { out in
            columns.withUnsafeBufferPointer { cp in
                weight.withUnsafeBufferPointer { wp in
                    withOptionalPointer(bias) { bp in
                        GEMM.multiply(m: rows, n: g.outChannels, k: rowWidth,
                                      cp.baseAddress!, lda: rowWidth, transposeA: false,
                                      wp.baseAddress!, ldb: rowWidth, transposeB: true,
                                      into: out.baseAddress!, ldc: g.outChannels, rowBias: bp)
                    }
                }
            }
        }
        return (output, columns)
    }

    /// Gradients with respect to the input, the weight and the bias.
    public static func backward(outputGradient dy: Tensor, unfolded columns: Tensor, weight: Tensor,
                                inputShape: [Int], stride: Int, padding: Int) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let profiled = Profiler.enter(.convolution)
        defer { Profiler.exit(profiled) }
        let g = Geometry(input: inputShape, weight: weight.shape, stride: stride, padding: padding)
        checkSameShape(dy.shape, [g.batch, g.outputLength, g.outChannels], "conv1d backward")
        let rows = g.batch * g.outputLength, rowWidth = g.kernelSize * g.inChannels
        let dWeight = Tensor(shape: weight.shape) { out in
            dy.withUnsafeBufferPointer { gp in
                columns.withUnsafeBufferPointer { cp in
                    GEMM.multiply(m: g.outChannels, n: rowWidth, k: rows,
                                  gp.baseAddress!, lda: g.outChannels, transposeA: true,
                                  cp.baseAddress!, ldb: rowWidth, transposeB: false,
                                  into: out.baseAddress!, ldc: rowWidth)
                }
            }
        }
        let dBias = Reduction.sum(dy.reshaped([rows, g.outChannels]), axis: 0)
        let dColumns = Tensor(shape: [rows, rowWidth]) { out in
            dy.withUnsafeBufferPointer { gp in
                weight.withUnsafeBufferPointer { wp in
                    GEMM.multiply(m: rows, n: rowWidth, k: g.outChannels,
                                  gp.baseAddress!, lda: g.outChannels, transposeA: false,
                                  wp.baseAddress!, ldb: rowWidth, transposeB: false,
                                  into: out.baseAddress!, ldc: rowWidth)
                }
            }
        }
        var dx = Tensor(zeros: inputShape)
        let lout = g.outputLength
        dx.withUnsafeMutableBufferPointer { out in
            dColumns.withUnsafeBufferPointer { cp in
                for b in 0..<g.batch {
                    for t in 0..<lout {
                        let row = cp.baseAddress! + (b * lout + t) * rowWidth
                        for j in 0..<g.kernelSize {
                            let position = t * g.stride - g.padding + j
                            guard position >= 0 && position < g.length else { continue }
                            let target = out.baseAddress! + (b * g.length + position) * g.inChannels
                            let source = row + j * g.inChannels
                            for c in 0..<g.inChannels { target[c] += source[c] }
                        }
                    }
                }
            }
        }
        return (dx, dWeight, dBias)
    }
}
