import Tensor

/// A stack of `Linear` layers with ReLU between them (none after the last), as DETR's heads.
public final class MLP: Module {
    public let layers: [Linear]

    public init(inputWidth: Int, hiddenWidth: Int, outputWidth: Int, layerCount: Int,
                initialization: LinearInitialization = .xavier, generator: inout SeededGenerator) {
        precondition(layerCount >= 1, "MLP: needs at least one layer, got \(layerCount)")
        let widths = [inputWidth] + [Int](repeating: hiddenWidth, count: layerCount - 1) + [outputWidth]
        var built: [Linear] = []
        for i in 0..<layerCount {
            built.append(Linear(inFeatures: widths[i], outFeatures: widths[i + 1], initialization: initialization,
                                generator: &generator))
        }
        layers = built
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        var h = x
        for layer in layers.dropLast() {
            h = linearActivation(h, weight: layer.weight, bias: layer.bias, activation: .relu)
        }
        return layers[layers.count - 1](h)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        layers.enumerated().flatMap { parameters(of: $0.element, prefix: "layers.\($0.offset)") }
    }
}
