import CVectorKernels

/// The optimizers' per-element updates (NN's `AdamW`), on 512-bit vectors where the CPU has them (the same bits).
public enum OptimizerKernels {
    /// One AdamW step over `count` elements: the moments `m`, `v` and the parameters `p` updated in place from the
    /// gradients `g`. `correction1` and `correction2` are Adam's bias corrections (`1 - beta^step`), `decay` is
    /// `1 - learningRate * weightDecay` (decoupled weight decay, applied first).
    public static func adamW(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                             firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                             count: Int, beta1: Float, beta2: Float, correction1: Float, correction2: Float,
                             learningRate: Float, epsilon: Float, decay: Float) {
        if GEMM.avx512Available {
            adamw_update_avx512(p, g, m, v, count, beta1, beta2, correction1, correction2, learningRate, epsilon, decay)
            return
        }
        adamWPortable(parameters: p, gradients: g, firstMoments: m, secondMoments: v, count: count, beta1: beta1,
                      beta2: beta2, correction1: correction1, correction2: correction2, learningRate: learningRate,
                      epsilon: epsilon, decay: decay)
    }

    @inline(__always)
    static func adamWPortable(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                              firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                              count: Int, beta1: Float, beta2: Float, correction1: Float, correction2: Float,
                              learningRate: Float, epsilon: Float, decay: Float) {
        for i in 0..<count {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            let mHat = m[i] / correction1, vHat = v[i] / correction2
            p[i] = p[i] * decay - learningRate * mHat / (vHat.squareRoot() + epsilon)
        }
    }
}
