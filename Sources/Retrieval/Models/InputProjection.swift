import NN
import Tensor

/// The reference's input projection: blocks of `LayerNorm -> Dropout -> Linear -> ReLU`, the last
/// block without ReLU (`relu: false` on it), mapping `[..., inputWidth]` to `[..., outputWidth]`.
public final class InputProjection: Module {
    public let norms: [LayerNorm]
    public let linears: [Linear]
    public let dropout: Dropout
    /// Whether the last block ends in a ReLU too (the TDEM dynamics projection does).
    public let reluAfterLast: Bool

    public init(inputWidth: Int, outputWidth: Int, blocks: Int, dropout probability: Float, reluAfterLast: Bool = false,
                initialization: LinearInitialization = .xavier, generator: inout SeededGenerator) {
        precondition(blocks >= 1, "InputProjection: needs at least one block")
        var norms: [LayerNorm] = [], linears: [Linear] = []
        for i in 0..<blocks {
            let width = i == 0 ? inputWidth : outputWidth
            norms.append(LayerNorm(width: width))
            linears.append(Linear(inFeatures: width, outFeatures: outputWidth, initialization: initialization, generator: &generator))
        }
        self.norms = norms
        self.linears = linears
        dropout = Dropout(probability: probability)
        self.reluAfterLast = reluAfterLast
    }

    public func callAsFunction(_ x: Variable, context: ForwardContext) -> Variable {
        var h = x
        for i in 0..<linears.count {
            // The ReLU ending the block before is applied by this block's norm as it reads each row.
            let normed = i == 0 ? norms[i](h, thenDropout: dropout, context: context)
                                : norms[i](rectified: h, thenDropout: dropout, context: context)
            h = linears[i](normed)
        }
        return reluAfterLast ? h.relu() : h
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        (0..<linears.count).flatMap { i in
            parameters(of: norms[i], prefix: "\(i).norm") + parameters(of: linears[i], prefix: "\(i).linear")
        }
    }
}

/// A post-norm feed-forward block with a learned PReLU (one shared slope, initialised 0.25, as
/// PyTorch's `nn.PReLU()`): `norm(x + dropout(W2 dropout(prelu(W1 x))))`.
public final class PReLUFeedForward: Module {
    public let linear1: Linear
    public let linear2: Linear
    public let slope: Variable
    public let norm: LayerNorm
    public let dropout: Dropout

    public init(width: Int, hiddenWidth: Int, dropout probability: Float, generator: inout SeededGenerator) {
        linear1 = Linear(inFeatures: width, outFeatures: hiddenWidth, generator: &generator)
        linear2 = Linear(inFeatures: hiddenWidth, outFeatures: width, generator: &generator)
        slope = Variable(Tensor(repeating: 0.25, shape: [1]), requiresGrad: true)
        norm = LayerNorm(width: width)
        dropout = Dropout(probability: probability)
    }

    public func callAsFunction(_ x: Variable, context: ForwardContext) -> Variable {
        norm(x, adding: undroppedBranch(x, context: context), dropout: dropout, context: context)
    }

    /// The residual branch before its last dropout, `W2 dropout(prelu(W1 x))`, for layers whose skip connection
    /// carries something other than the branch's input: they add it with `LayerNorm`'s fused residual
    /// dropout (`norm(skip, adding:, dropout:, context:)`), which draws the same mask `dropout` would.
    public func undroppedBranch(_ x: Variable, context: ForwardContext) -> Variable {
        let p = context.isTraining ? dropout.probability : 0
        return linear2(sharedSlopePReLU(linear1(x), slope: slope, dropout: p, generator: &context.generator, rows: context.batchRows))
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: linear1, prefix: "linear1") + parameters(of: linear2, prefix: "linear2")
            + [(name: "activation.weight", parameter: slope)] + parameters(of: norm, prefix: "norm")
    }
}

/// A post-norm DETR encoder layer (positions added to queries and keys) with the PReLU feed-forward
/// block the QD-DETR reference uses.
public final class PReLUEncoderLayer: Module {
    public let selfAttention: MultiheadAttention
    public let norm: LayerNorm
    public let feedForward: PReLUFeedForward
    public let dropout: Dropout

    public init(width: Int, heads: Int, feedForwardWidth: Int, dropout probability: Float, generator: inout SeededGenerator) {
        selfAttention = MultiheadAttention(width: width, heads: heads, dropout: probability, generator: &generator)
        norm = LayerNorm(width: width)
        feedForward = PReLUFeedForward(width: width, hiddenWidth: feedForwardWidth, dropout: probability, generator: &generator)
        dropout = Dropout(probability: probability)
    }

    /// `source` `[B, L, D]`, `position` `[B, L, D]`, padding mask over `L`.
    public func callAsFunction(_ source: Variable, position: Variable, keyPaddingMask: KeyPaddingMask,
                               context: ForwardContext) -> Variable {
        let queryKey = source + position
        let attended = selfAttention(query: queryKey, key: queryKey, value: source,
                                     keyPaddingMask: keyPaddingMask, context: context)
        return feedForward(norm(source, adding: attended, dropout: dropout, context: context), context: context)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: selfAttention, prefix: "self_attn") + parameters(of: norm, prefix: "norm1")
            + parameters(of: feedForward, prefix: "ffn")
    }
}
