import Foundation
import Tensor

/// Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's `AdamW`):
/// `p -= lr * wd * p`, then the bias-corrected Adam step.
///
/// The moments are kept per parameter in `namedParameters()` order; `exportState()` /
/// `importState(_:)` give them (and the step count) as plain arrays for checkpoints.
public final class AdamW {
    /// The parameters being optimised, with their names.
    public let namedParameters: [(name: String, parameter: Variable)]
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    /// Number of steps taken so far.
    public private(set) var step: Int = 0
    private var firstMoments: [[Float]]
    private var secondMoments: [[Float]]

    public init(namedParameters: [(name: String, parameter: Variable)], learningRate: Float, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 1e-2) {
        self.namedParameters = namedParameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = namedParameters.map { [Float](repeating: 0, count: $0.parameter.count) }
        secondMoments = firstMoments
    }

    public convenience init(module: Module, learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 1e-2) {
        self.init(namedParameters: module.namedParameters(), learningRate: learningRate, beta1: beta1, beta2: beta2,
                  epsilon: epsilon, weightDecay: weightDecay)
    }

    /// Updates every parameter that has a gradient (parameters without one are left untouched, their
    /// moments unchanged, as PyTorch does). With `gradientScale`, as if each gradient had first been scaled by it the
    /// way `GradientClipping.clipByGlobalNorm` scales (`g * scale + 0`), with the same bits, but without writing the
    /// scaled gradients: pass `GradientClipping.globalNormScale(...).scale` to clip and step in one pass over them.
    public func update(gradientScale: Float? = nil) {
        let profiled = Profiler.enter(.optimizer)
        defer { Profiler.exit(profiled) }
        step += 1
        let correction1 = 1 - Foundation.pow(beta1, Float(step))
        let correction2 = 1 - Foundation.pow(beta2, Float(step))
        let (lr, b1, b2, eps) = (learningRate, beta1, beta2, epsilon)
        let decay = 1 - learningRate * weightDecay
        for (index, entry) in namedParameters.enumerated() {
            guard let gradient = entry.parameter.grad else { continue }
            firstMoments[index].withUnsafeMutableBufferPointer { m in
                secondMoments[index].withUnsafeMutableBufferPointer { v in
                    gradient.withUnsafeBufferPointer { g in
                        entry.parameter.value.withUnsafeMutableBufferPointer { p in
                            Parallelism.forEachChunk(count: p.count, grain: Parallelism.elementwiseGrain) { range in
                                let start = range.lowerBound
                                OptimizerKernels.adamW(parameters: p.baseAddress! + start, gradients: g.baseAddress! + start,
                                                       firstMoments: m.baseAddress! + start,
                                                       secondMoments: v.baseAddress! + start, count: range.count,
                                                       beta1: b1, beta2: b2, correction1: correction1,
                                                       correction2: correction2, learningRate: lr, epsilon: eps,
                                                       decay: decay, gradientScale: gradientScale)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The optimizer's state as plain arrays: step count and both moments per parameter name.
    public struct State: Sendable, Equatable {
        public var step: Int
        public var names: [String]
        public var firstMoments: [[Float]]
        public var secondMoments: [[Float]]

        public init(step: Int, names: [String], firstMoments: [[Float]], secondMoments: [[Float]]) {
            self.step = step
            self.names = names
            self.firstMoments = firstMoments
            self.secondMoments = secondMoments
        }
    }

    public func exportState() -> State {
        State(step: step, names: namedParameters.map(\.name), firstMoments: firstMoments, secondMoments: secondMoments)
    }

    /// Restores a state exported from an optimizer over the same parameters (names and sizes checked).
    public func importState(_ state: State) {
        precondition(state.names == namedParameters.map(\.name),
                     "AdamW.importState: parameter names differ from this optimizer's")
        for (index, entry) in namedParameters.enumerated() {
            precondition(state.firstMoments[index].count == entry.parameter.count
                         && state.secondMoments[index].count == entry.parameter.count,
                         "AdamW.importState: moment size mismatch for '\(entry.name)'")
        }
        step = state.step
        firstMoments = state.firstMoments
        secondMoments = state.secondMoments
    }
}
