import Tensor

/// Layer normalisation over the last dimension with learned scale (ones) and shift (zeros).
public final class LayerNorm: Module {
    public let weight: Variable
    public let bias: Variable
    public let epsilon: Float

    public init(width: Int, epsilon: Float = 1e-5) {
        weight = Variable(Tensor(repeating: 1, shape: [width]), requiresGrad: true)
        bias = Variable(Tensor(zeros: [width]), requiresGrad: true)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        layerNorm(x, gamma: weight, beta: bias, epsilon: epsilon)
    }

    /// `dropout(norm(x))` in one fused op; `dropout` applies only while `context` is training.
    public func callAsFunction(_ x: Variable, thenDropout dropout: Dropout, context: ForwardContext) -> Variable {
        let p = context.isTraining ? dropout.probability : 0
        return layerNorm(x, gamma: weight, beta: bias, epsilon: epsilon, dropout: p, generator: &context.generator,
                         rows: context.batchRows)
    }

    /// `dropout(norm(relu(x)))` in one fused op; `dropout` applies only while `context` is training.
    public func callAsFunction(rectified x: Variable, thenDropout dropout: Dropout, context: ForwardContext) -> Variable {
        let p = context.isTraining ? dropout.probability : 0
        return layerNorm(rectified: x, gamma: weight, beta: bias, epsilon: epsilon, dropout: p, generator: &context.generator,
                         rows: context.batchRows)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        [(name: "weight", parameter: weight), (name: "bias", parameter: bias)]
    }
}
