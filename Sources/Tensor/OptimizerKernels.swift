import CVectorKernels

/// The optimizers' per-element updates (NN's `AdamW`), on 512-bit vectors where the CPU has them (the same bits).
public enum OptimizerKernels {
    /// One AdamW step over `count` elements: the moments `m`, `v` and the parameters `p` updated in place from the
    /// gradients `g`. `correction1` and `correction2` are Adam's bias corrections (`1 - beta^step`), `decay` is
    /// `1 - learningRate * weightDecay` (decoupled weight decay, applied first). With `gradientScale`, each gradient is
    /// first taken as `g * gradientScale + 0`, the value gradient clipping writes (`GradientClipping`), without writing it.
    public static func adamW(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                             firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                             count: Int, beta1: Float, beta2: Float, correction1: Float, correction2: Float,
                             learningRate: Float, epsilon: Float, decay: Float, gradientScale: Float? = nil) {
        if GEMM.avx512Available && VectorKernels.enabled {
            adamw_update_avx512(p, g, m, v, count, beta1, beta2, correction1, correction2, learningRate, epsilon, decay,
                                gradientScale == nil ? 0 : 1, gradientScale ?? 1)
            return
        }
        adamWPortable(parameters: p, gradients: g, firstMoments: m, secondMoments: v, count: count, beta1: beta1,
                      beta2: beta2, correction1: correction1, correction2: correction2, learningRate: learningRate,
                      epsilon: epsilon, decay: decay, gradientScale: gradientScale)
    }

    @inline(__always)
    static func adamWPortable(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                              firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                              count: Int, beta1: Float, beta2: Float, correction1: Float, correction2: Float,
                              learningRate: Float, epsilon: Float, decay: Float, gradientScale: Float?) {
        for i in 0..<count {
            let gradient = gradientScale.map { g[i] * $0 + 0 } ?? g[i]
            m[i] = beta1 * m[i] + (1 - beta1) * gradient
            v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
            let mHat = m[i] / correction1, vHat = v[i] / correction2
            p[i] = p[i] * decay - learningRate * mHat / (vHat.squareRoot() + epsilon)
        }
    }
}
