/// Linear interpolation of features at fractional time positions (1-D `grid_sample` with
/// `align_corners = true` and zero padding): for `x` `[B, L, D]` and positions `[B, M]` in clip
/// units, `out[b, m] = (1 - w) * x[b, i] + w * x[b, i + 1]` with `i = floor(p)`, `w = p - i`, and rows
/// outside `0..<L` reading as zeros.
public enum InterpolationKernel {
    /// Sampled features `[B, M, D]`.
    public static func forward(_ x: Tensor, positions: Tensor) -> Tensor {
        let profiled = Profiler.enter(.convolution)
        defer { Profiler.exit(profiled) }
        let (batch, length, width, samples) = checkShapes(x, positions)
        return Tensor(shape: [batch, samples, width]) { out in
            x.withUnsafeBufferPointer { src in
                positions.withUnsafeBufferPointer { pos in
                    for b in 0..<batch {
                        for m in 0..<samples {
                            let p = pos[b * samples + m]
                            let lower = Int(p.rounded(.down))
                            let w = p - Float(lower)
                            let target = out.baseAddress! + (b * samples + m) * width
                            target.update(repeating: 0, count: width)
                            if lower >= 0 && lower < length {
                                let row = src.baseAddress! + (b * length + lower) * width
                                for d in 0..<width { target[d] += (1 - w) * row[d] }
                            }
                            if lower + 1 >= 0 && lower + 1 < length {
                                let row = src.baseAddress! + (b * length + lower + 1) * width
                                for d in 0..<width { target[d] += w * row[d] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Gradients with respect to the features (`[B, L, D]`) and the positions (`[B, M]`). The
    /// position gradient is the slope between the two neighbouring rows (one-sided at integers).
    public static func backward(outputGradient dy: Tensor, input x: Tensor, positions: Tensor) -> (input: Tensor, positions: Tensor) {
        let profiled = Profiler.enter(.convolution)
        defer { Profiler.exit(profiled) }
        let (batch, length, width, samples) = checkShapes(x, positions)
        checkSameShape(dy.shape, [batch, samples, width], "interpolation backward")
        var dx = Tensor(zeros: x.shape)
        var dPositions = Tensor(zeros: positions.shape)
        dx.withUnsafeMutableBufferPointer { dxp in
            dPositions.withUnsafeMutableBufferPointer { dpp in
                x.withUnsafeBufferPointer { src in
                    dy.withUnsafeBufferPointer { g in
                        positions.withUnsafeBufferPointer { pos in
                            for b in 0..<batch {
                                for m in 0..<samples {
                                    let p = pos[b * samples + m]
                                    let lower = Int(p.rounded(.down))
                                    let w = p - Float(lower)
                                    let grad = g.baseAddress! + (b * samples + m) * width
                                    var slope: Float = 0
                                    if lower >= 0 && lower < length {
                                        let offset = (b * length + lower) * width
                                        for d in 0..<width {
                                            dxp[offset + d] += (1 - w) * grad[d]
                                            slope -= grad[d] * src[offset + d]
                                        }
                                    }
                                    if lower + 1 >= 0 && lower + 1 < length {
                                        let offset = (b * length + lower + 1) * width
                                        for d in 0..<width {
                                            dxp[offset + d] += w * grad[d]
                                            slope += grad[d] * src[offset + d]
                                        }
                                    }
                                    dpp[b * samples + m] = slope
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dPositions)
    }

    private static func checkShapes(_ x: Tensor, _ positions: Tensor) -> (Int, Int, Int, Int) {
        precondition(x.rank == 3, "interpolation: features must be [B, L, D], got \(x.shape)")
        precondition(positions.rank == 2 && positions.shape[0] == x.shape[0],
                     "interpolation: positions \(positions.shape) must be [B, M] for features \(x.shape)")
        return (x.shape[0], x.shape[1], x.shape[2], positions.shape[1])
    }
}
