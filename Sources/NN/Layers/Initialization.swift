import Tensor

/// Parameter initialisers, all drawing from an explicit generator.
public enum Initialization {
    /// Xavier (Glorot) uniform: `U(-a, a)` with `a = gain * sqrt(6 / (fanIn + fanOut))`.
    /// For a `[out, in, ...]` weight, fan-in is `in * receptive field`, fan-out `out * receptive field`.
    public static func xavierUniform(shape: [Int], gain: Float = 1, generator: inout SeededGenerator) -> Tensor {
        precondition(shape.count >= 2, "xavierUniform: needs a weight of rank >= 2, got \(shape)")
        let receptive = shape.dropFirst(2).reduce(1, *)
        let fanIn = shape[1] * receptive, fanOut = shape[0] * receptive
        let bound = gain * (6 / Float(fanIn + fanOut)).squareRoot()
        return uniform(shape: shape, bound: bound, generator: &generator)
    }

    /// `U(-bound, bound)`.
    public static func uniform(shape: [Int], bound: Float, generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { out in
            for i in 0..<out.count { out[i] = generator.nextUniform(in: -bound, bound) }
        }
    }

    /// `N(0, std^2)`.
    public static func normal(shape: [Int], standardDeviation: Float = 1, generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { out in
            for i in 0..<out.count { out[i] = generator.nextNormal() * standardDeviation }
        }
    }
}
