import Foundation

/// How a per-element loss is reduced to a scalar.
public enum LossReduction: Sendable, Equatable {
    /// Average over elements.
    case mean
    /// Sum over elements.
    case sum
    /// Sum divided by a given count (e.g. the number of matched targets, as DETR-style losses do).
    case sumOver(Float)

    func divisor(elements: Int) -> Float {
        switch self {
        case .mean: return Float(max(elements, 1))
        case .sum: return 1
        case .sumOver(let count): return count
        }
    }
}

/// Loss functions as forward (scalar) / backward (gradient with respect to the prediction) pairs.
/// Forward sums accumulate in Double.
public enum LossKernels {
    /// `|pred - target|`, reduced.
    public static func l1(_ pred: Tensor, _ target: Tensor, reduction: LossReduction) -> Float {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        checkSameShape(pred.shape, target.shape, "l1Loss prediction vs target")
        var total: Double = 0
        for i in 0..<pred.count { total += Double(abs(pred.data[i] - target.data[i])) }
        return Float(total) / reduction.divisor(elements: pred.count)
    }

    public static func l1Backward(_ pred: Tensor, _ target: Tensor, reduction: LossReduction, outputGradient: Float) -> Tensor {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        let scale = outputGradient / reduction.divisor(elements: pred.count)
        return Tensor(shape: pred.shape) { out in
            for i in 0..<pred.count {
                let d = pred.data[i] - target.data[i]
                out[i] = d > 0 ? scale : (d < 0 ? -scale : 0)
            }
        }
    }

    /// Smooth L1 (Huber with threshold `beta`): `0.5 d^2 / beta` if `|d| < beta`, else `|d| - 0.5 beta`.
    public static func smoothL1(_ pred: Tensor, _ target: Tensor, beta: Float, reduction: LossReduction) -> Float {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        checkSameShape(pred.shape, target.shape, "smoothL1Loss prediction vs target")
        var total: Double = 0
        for i in 0..<pred.count {
            let d = abs(pred.data[i] - target.data[i])
            total += Double(d < beta ? 0.5 * d * d / beta : d - 0.5 * beta)
        }
        return Float(total) / reduction.divisor(elements: pred.count)
    }

    public static func smoothL1Backward(_ pred: Tensor, _ target: Tensor, beta: Float, reduction: LossReduction,
                                        outputGradient: Float) -> Tensor {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        let scale = outputGradient / reduction.divisor(elements: pred.count)
        return Tensor(shape: pred.shape) { out in
            for i in 0..<pred.count {
                let d = pred.data[i] - target.data[i]
                out[i] = scale * (abs(d) < beta ? d / beta : (d > 0 ? 1 : -1))
            }
        }
    }

    /// Cross entropy of `logits` `[N, C]` against class indices, weighted per class like PyTorch:
    /// `sum_i w[y_i] * -log p_i[y_i] / sum_i w[y_i]`. Returns the loss and the log-probabilities.
    public static func crossEntropy(logits: Tensor, targets: [Int], classWeights: [Float]?) -> (loss: Float, logProbabilities: Tensor) {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        precondition(logits.rank == 2 && logits.shape[0] == targets.count,
                     "crossEntropy: logits \(logits.shape) must be [N, C] with N = \(targets.count) targets")
        let classes = logits.shape[1]
        if let classWeights { precondition(classWeights.count == classes, "crossEntropy: \(classWeights.count) class weights for \(classes) classes") }
        let logP = Softmax.logForward(logits, axis: 1)
        var total: Double = 0, weightTotal: Double = 0
        for (i, y) in targets.enumerated() {
            precondition(y >= 0 && y < classes, "crossEntropy: target \(y) out of range 0..<\(classes)")
            let w = Double(classWeights?[y] ?? 1)
            total -= w * Double(logP.data[i * classes + y])
            weightTotal += w
        }
        return (Float(total / max(weightTotal, .leastNonzeroMagnitude)), logP)
    }

    public static func crossEntropyBackward(logProbabilities logP: Tensor, targets: [Int], classWeights: [Float]?,
                                            outputGradient: Float) -> Tensor {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        let classes = logP.shape[1]
        var weightTotal: Double = 0
        for y in targets { weightTotal += Double(classWeights?[y] ?? 1) }
        let scale = outputGradient / Float(max(weightTotal, .leastNonzeroMagnitude))
        return Tensor(shape: logP.shape) { out in
            for (i, y) in targets.enumerated() {
                let w = (classWeights?[y] ?? 1) * scale
                for c in 0..<classes { out[i * classes + c] = w * Foundation.exp(logP.data[i * classes + c]) }
                out[i * classes + y] -= w
            }
        }
    }

    /// Binary cross entropy on logits: `max(x, 0) - x t + log(1 + exp(-|x|))`, reduced.
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, _ targets: Tensor, reduction: LossReduction) -> Float {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        checkSameShape(logits.shape, targets.shape, "binaryCrossEntropyWithLogits logits vs targets")
        var total: Double = 0
        for i in 0..<logits.count {
            total += Double(bce(logits.data[i], targets.data[i]))
        }
        return Float(total) / reduction.divisor(elements: logits.count)
    }

    public static func binaryCrossEntropyWithLogitsBackward(_ logits: Tensor, _ targets: Tensor, reduction: LossReduction,
                                                            outputGradient: Float) -> Tensor {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        let scale = outputGradient / reduction.divisor(elements: logits.count)
        return Tensor(shape: logits.shape) { out in
            for i in 0..<logits.count { out[i] = scale * (sigmoid(logits.data[i]) - targets.data[i]) }
        }
    }

    /// Sigmoid focal loss (RetinaNet, as torchvision): `alpha_t * (1 - p_t)^gamma * BCE`, with
    /// `alpha_t = alpha t + (1 - alpha)(1 - t)`; a negative `alpha` disables the weighting.
    public static func sigmoidFocal(_ logits: Tensor, _ targets: Tensor, alpha: Float, gamma: Float,
                                    reduction: LossReduction) -> Float {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        checkSameShape(logits.shape, targets.shape, "sigmoidFocalLoss logits vs targets")
        var total: Double = 0
        for i in 0..<logits.count {
            let x = logits.data[i], t = targets.data[i]
            let p = sigmoid(x)
            let oneMinusPt = 1 - (p * t + (1 - p) * (1 - t))
            let alphaT: Float = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1
            total += Double(alphaT * Foundation.pow(oneMinusPt, gamma) * bce(x, t))
        }
        return Float(total) / reduction.divisor(elements: logits.count)
    }

    public static func sigmoidFocalBackward(_ logits: Tensor, _ targets: Tensor, alpha: Float, gamma: Float,
                                            reduction: LossReduction, outputGradient: Float) -> Tensor {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        let scale = outputGradient / reduction.divisor(elements: logits.count)
        return Tensor(shape: logits.shape) { out in
            for i in 0..<logits.count {
                let x = logits.data[i], t = targets.data[i]
                let p = sigmoid(x)
                let oneMinusPt = 1 - (p * t + (1 - p) * (1 - t))
                let alphaT: Float = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1
                let modulating = Foundation.pow(oneMinusPt, gamma)
                // d(1 - p_t)^gamma / dx = -gamma (1 - p_t)^(gamma - 1) (2t - 1) p (1 - p); the power is
                // taken as 0 at a zero base so gamma < 1 cannot produce infinities.
                let lowerPower = oneMinusPt > 0 ? Foundation.pow(oneMinusPt, gamma - 1) : (gamma == 1 ? 1 : 0)
                let dModulating = -gamma * lowerPower * (2 * t - 1) * p * (1 - p)
                out[i] = scale * alphaT * ((p - t) * modulating + bce(x, t) * dModulating)
            }
        }
    }

    @inline(__always)
    static func bce(_ x: Float, _ t: Float) -> Float {
        max(x, 0) - x * t + Foundation.log1p(Foundation.exp(-abs(x)))
    }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
    }
}
