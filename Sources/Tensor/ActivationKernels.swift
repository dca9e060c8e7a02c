import Foundation

/// Activation functions and their gradients.
public enum Activation {
    /// `max(x, 0)`.
    public static func relu(_ x: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return unary(x) { input, out, range in for i in range { out[i] = input[i] > 0 ? input[i] : 0 } }
    }

    /// `dy` where `x > 0`, else 0.
    public static func reluBackward(outputGradient dy: Tensor, input x: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return binary(dy, x, "relu backward") { g, input, out, range in
            // Both values are loaded before the select (no conditional load), so the loop vectorises.
            for i in range {
                let gradient = g[i]
                out[i] = input[i] > 0 ? gradient : 0
            }
        }
    }

    /// The exact (erf-based) GELU, as PyTorch's default: `x * Phi(x)`.
    public static func gelu(_ x: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return unary(x) { input, out, range in
            for i in range {
                let v = input[i]
                out[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752))
            }
        }
    }

    /// `dy * (Phi(x) + x * phi(x))`.
    public static func geluBackward(outputGradient dy: Tensor, input x: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return binary(dy, x, "gelu backward") { g, input, out, range in
            for i in range {
                let v = input[i]
                let cdf = 0.5 * (1 + erff(v * 0.70710678118654752))
                let pdf = Foundation.exp(-0.5 * v * v) * 0.39894228040143268
                out[i] = g[i] * (cdf + v * pdf)
            }
        }
    }

    /// PReLU: `x` where positive, else `slope * x`, with one slope per channel (last dimension)
    /// or one shared slope (`slope` of shape `[1]`).
    public static func prelu(_ x: Tensor, slope: Tensor) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        let channels = preluChannels(x, slope)
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                slope.withUnsafeBufferPointer { a in
                    for i in 0..<input.count {
                        let v = input[i]
                        out[i] = v > 0 ? v : a[channels == 1 ? 0 : i % channels] * v
                    }
                }
            }
        }
    }

    /// Gradients of PReLU with respect to the input and the slope(s).
    public static func preluBackward(outputGradient dy: Tensor, input x: Tensor, slope: Tensor) -> (input: Tensor, slope: Tensor) {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        checkSameShape(dy.shape, x.shape, "prelu backward")
        let channels = preluChannels(x, slope)
        var dSlope = Tensor(zeros: slope.shape)
        let dx = Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                dy.withUnsafeBufferPointer { g in
                    slope.withUnsafeBufferPointer { a in
                        dSlope.withUnsafeMutableBufferPointer { da in
                            for i in 0..<input.count {
                                let c = channels == 1 ? 0 : i % channels
                                if input[i] > 0 {
                                    out[i] = g[i]
                                } else {
                                    out[i] = a[c] * g[i]
                                    da[c] += g[i] * input[i]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dSlope)
    }

    private static func preluChannels(_ x: Tensor, _ slope: Tensor) -> Int {
        let channels = slope.count
        precondition(slope.rank == 1 && (channels == 1 || channels == (x.shape.last ?? 0)),
                     "prelu: slope \(slope.shape) must be [1] or [channels] for input \(x.shape)")
        return channels
    }

    private static func unary(_ x: Tensor,
                              _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, Range<Int>) -> Void) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: input.count, grain: Parallelism.elementwiseGrain) { range in
                    body(input, out, range)
                }
            }
        }
    }

    private static func binary(_ a: Tensor, _ b: Tensor, _ name: String,
                               _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, Range<Int>) -> Void) -> Tensor {
        checkSameShape(a.shape, b.shape, name)
        return Tensor(shape: a.shape) { out in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    Parallelism.forEachChunk(count: ap.count, grain: Parallelism.elementwiseGrain) { range in
                        body(ap, bp, out, range)
                    }
                }
            }
        }
    }
}
