import Tensor

/// How a `Linear` layer's weight starts.
public enum LinearInitialization: Sendable {
    /// Xavier (Glorot) uniform, `U(-a, a)` with `a = sqrt(6 / (in + out))`: what DETR-style transformers reset
    /// their own weights to.
    case xavier
    /// PyTorch's `nn.Linear` default (Kaiming uniform with `a = sqrt(5)`), `U(-1/sqrt(in), 1/sqrt(in))`.
    case pytorchDefault
    /// `U(-bound, bound)`.
    case uniform(bound: Float)

    func weight(shape: [Int], generator: inout SeededGenerator) -> Tensor {
        switch self {
        case .xavier: return Initialization.xavierUniform(shape: shape, generator: &generator)
        case .pytorchDefault: return Initialization.uniform(shape: shape, bound: 1 / Float(shape[1]).squareRoot(), generator: &generator)
        case .uniform(let bound): return Initialization.uniform(shape: shape, bound: bound, generator: &generator)
        }
    }
}

/// `y = x W^T + b` over the last dimension. Weight `[out, in]` (Xavier uniform, or PyTorch's default), bias
/// `[out]` (PyTorch's default `U(-1/sqrt(in), 1/sqrt(in))`, or zeros).
public final class Linear: Module {
    public let weight: Variable
    public let bias: Variable?

    public init(inFeatures: Int, outFeatures: Int, bias hasBias: Bool = true, zeroBias: Bool = false,
                initialization: LinearInitialization = .xavier, generator: inout SeededGenerator) {
        weight = Variable(initialization.weight(shape: [outFeatures, inFeatures], generator: &generator), requiresGrad: true)
        if hasBias {
            let initial = zeroBias
                ? Tensor(zeros: [outFeatures])
                : Initialization.uniform(shape: [outFeatures], bound: 1 / Float(inFeatures).squareRoot(), generator: &generator)
            bias = Variable(initial, requiresGrad: true)
        } else {
            bias = nil
        }
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Variable) -> Variable { linear(x, weight: weight, bias: bias) }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = [(name: "weight", parameter: weight)]
        if let bias { list.append((name: "bias", parameter: bias)) }
        return list
    }
}
