import NN
import Tensor

/// A 3-layer 1-D convolutional network over clip tokens (paper section 3.3): `conv -> ReLU -> conv ->
/// ReLU -> conv`, each convolution `kernel` wide with "same" padding. Padding clips are zeroed before every
/// convolution, so a valid clip's output never depends on padding.
public final class ConvolutionalHead: Module {
    /// Per layer, `[Cout, k, Cin]` weight and `[Cout]` bias.
    public let weights: [Variable]
    public let biases: [Variable]

    public init(width: Int, outputWidth: Int, kernel: Int, generator: inout SeededGenerator) {
        precondition(kernel % 2 == 1, "ConvolutionalHead: kernel \(kernel) must be odd")
        let widths = [width, width, width, outputWidth]
        var weights: [Variable] = [], biases: [Variable] = []
        for i in 0..<3 {
            // PyTorch's default convolution initialisation bound, 1 / sqrt(fan-in).
            let bound = 1 / Float(kernel * widths[i]).squareRoot()
            weights.append(Variable(Initialization.uniform(shape: [widths[i + 1], kernel, widths[i]], bound: bound,
                                                           generator: &generator), requiresGrad: true))
            biases.append(Variable(Initialization.uniform(shape: [widths[i + 1]], bound: bound, generator: &generator),
                                   requiresGrad: true))
        }
        self.weights = weights
        self.biases = biases
    }

    /// `x` `[B, L, D]` with its `[B, L]` validity mask, giving `[B, L, outputWidth]`.
    public func callAsFunction(_ x: Variable, videoMask: Tensor) -> Variable {
        let mask = CDNetOps.tokenMask(videoMask)
        var h = x
        for i in 0..<3 {
            h = conv1d(h * mask, weight: weights[i], bias: biases[i], padding: (weights[i].shape[1] - 1) / 2)
            if i < 2 { h = h.relu() }
        }
        return h
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        (0..<3).flatMap { i in
            [(name: "\(i).weight", parameter: weights[i]), (name: "\(i).bias", parameter: biases[i])]
        }
    }
}
