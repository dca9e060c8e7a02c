import Tensor

/// Gradient clipping by global norm, as PyTorch's `clip_grad_norm_`.
public enum GradientClipping {
    /// Scales all gradients by `maxNorm / (norm + 1e-6)` when their joint L2 norm exceeds `maxNorm`.
    /// Returns the norm before clipping (summed in Double, in parameter order).
    @discardableResult
    public static func clipByGlobalNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
        let profiled = Profiler.enter(.optimizer)
        defer { Profiler.exit(profiled) }
        var squares: Double = 0
        for p in parameters {
            guard let g = p.grad else { continue }
            g.withUnsafeBufferPointer { values in
                for v in values { squares += Double(v) * Double(v) }
            }
        }
        let norm = Float(squares.squareRoot())
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for p in parameters where p.grad != nil {
                p.grad = Elementwise.affine(p.grad!, scale: coefficient, shift: 0)
            }
        }
        return norm
    }
}

/// Step learning-rate decay: `base * gamma^floor(epoch / stepSize)` (PyTorch's `StepLR`).
public struct StepLRSchedule: Sendable, Equatable {
    public let baseLearningRate: Float
    public let stepSize: Int
    public let gamma: Float

    public init(baseLearningRate: Float, stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize > 0, "StepLRSchedule: step size must be positive, got \(stepSize)")
        self.baseLearningRate = baseLearningRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// The learning rate for `epoch` (0-based).
    public func learningRate(epoch: Int) -> Float {
        var rate = baseLearningRate
        for _ in 0..<(epoch / stepSize) { rate *= gamma }
        return rate
    }
}
