import Tensor

/// `y = x W^T + b` over the last dimension. Weight `[out, in]` (Xavier uniform), bias `[out]`
/// (PyTorch's default `U(-1/sqrt(in), 1/sqrt(in))`, or zeros).
public final class Linear: Module {
    public let weight: Variable
    public let bias: Variable?

    public init(inFeatures: Int, outFeatures: Int, bias hasBias: Bool = true, zeroBias: Bool = false,
                generator: inout SeededGenerator) {
        weight = Variable(Initialization.xavierUniform(shape: [outFeatures, inFeatures], generator: &generator), requiresGrad: true)
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
