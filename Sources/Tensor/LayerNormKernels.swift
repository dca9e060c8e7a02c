/// Layer normalisation over the last dimension, with a per-feature scale and shift.
public enum LayerNormKernel {
    /// What the forward pass saves for the backward pass: per-row mean and reciprocal std.
    public struct Saved: Sendable {
        public let mean: [Float]
        public let reciprocalStd: [Float]
    }

    /// `y = (x - mean) / sqrt(var + epsilon) * gamma + beta` per row of the last dimension.
    /// `x`: `[..., D]`; `gamma`, `beta`: `[D]`.
    public static func forward(_ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float) -> (output: Tensor, saved: Saved) {
        let width = x.shape.last ?? 1
        checkSameShape(gamma.shape, [width], "layerNorm gamma vs input \(x.shape)")
        checkSameShape(beta.shape, [width], "layerNorm beta vs input \(x.shape)")
        let rows = x.count / max(1, width)
        var mean = [Float](repeating: 0, count: rows)
        var reciprocalStd = [Float](repeating: 0, count: rows)
        let output = Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                gamma.withUnsafeBufferPointer { g in
                    beta.withUnsafeBufferPointer { b in
                        mean.withUnsafeMutableBufferPointer { meanOut in
                            reciprocalStd.withUnsafeMutableBufferPointer { rstdOut in
                                Parallelism.forEachChunk(count: rows, grain: 64) { range in
                                    for row in range {
                                        let line = input.baseAddress! + row * width
                                        var total: Float = 0
                                        for j in 0..<width { total += line[j] }
                                        let mu = total / Float(width)
                                        var squares: Float = 0
                                        for j in 0..<width {
                                            let centred = line[j] - mu
                                            squares += centred * centred
                                        }
                                        let rstd = 1 / (squares / Float(width) + epsilon).squareRoot()
                                        meanOut[row] = mu
                                        rstdOut[row] = rstd
                                        let target = out.baseAddress! + row * width
                                        for j in 0..<width { target[j] = (line[j] - mu) * rstd * g[j] + b[j] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output, Saved(mean: mean, reciprocalStd: reciprocalStd))
    }

    /// Gradients of layer norm with respect to the input, gamma and beta.
    public static func backward(outputGradient dy: Tensor, input x: Tensor, gamma: Tensor, saved: Saved)
        -> (input: Tensor, gamma: Tensor, beta: Tensor) {
        checkSameShape(dy.shape, x.shape, "layerNorm backward")
        let width = x.shape.last ?? 1
        let rows = x.count / max(1, width)
        var dGamma = Tensor(zeros: [width])
        var dBeta = Tensor(zeros: [width])
        let dx = Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                dy.withUnsafeBufferPointer { g in
                    gamma.withUnsafeBufferPointer { gammaP in
                        Parallelism.forEachChunk(count: rows, grain: 64) { range in
                            for row in range {
                                let line = input.baseAddress! + row * width
                                let grad = g.baseAddress! + row * width
                                let mu = saved.mean[row], rstd = saved.reciprocalStd[row]
                                var meanDxhat: Float = 0, meanDxhatXhat: Float = 0
                                for j in 0..<width {
                                    let xhat = (line[j] - mu) * rstd
                                    let dxhat = grad[j] * gammaP[j]
                                    meanDxhat += dxhat
                                    meanDxhatXhat += dxhat * xhat
                                }
                                meanDxhat /= Float(width)
                                meanDxhatXhat /= Float(width)
                                let target = out.baseAddress! + row * width
                                for j in 0..<width {
                                    let xhat = (line[j] - mu) * rstd
                                    target[j] = rstd * (grad[j] * gammaP[j] - meanDxhat - xhat * meanDxhatXhat)
                                }
                            }
                        }
                    }
                }
            }
        }
        // Parameter gradients reduce over rows; kept serial so the summation order is fixed.
        dGamma.withUnsafeMutableBufferPointer { dg in
            dBeta.withUnsafeMutableBufferPointer { db in
                x.withUnsafeBufferPointer { input in
                    dy.withUnsafeBufferPointer { g in
                        for row in 0..<rows {
                            let mu = saved.mean[row], rstd = saved.reciprocalStd[row]
                            let line = input.baseAddress! + row * width
                            let grad = g.baseAddress! + row * width
                            for j in 0..<width {
                                dg[j] += grad[j] * (line[j] - mu) * rstd
                                db[j] += grad[j]
                            }
                        }
                    }
                }
            }
        }
        return (dx, dGamma, dBeta)
    }
}
