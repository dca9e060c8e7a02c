import Tensor

/// A post-norm transformer encoder layer as in DETR: positional encodings are added to queries and
/// keys (not values) of the self-attention, then `norm(x + dropout(sublayer(x)))` for attention and
/// for the feed-forward block.
public final class TransformerEncoderLayer: Module {
    public let selfAttention: MultiheadAttention
    public let linear1: Linear
    public let linear2: Linear
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let dropout: Dropout
    public let activation: FeedForwardActivation

    public init(width: Int, heads: Int, feedForwardWidth: Int, dropout probability: Float = 0.1,
                activation: FeedForwardActivation = .relu, generator: inout SeededGenerator) {
        selfAttention = MultiheadAttention(width: width, heads: heads, dropout: probability, generator: &generator)
        linear1 = Linear(inFeatures: width, outFeatures: feedForwardWidth, generator: &generator)
        linear2 = Linear(inFeatures: feedForwardWidth, outFeatures: width, generator: &generator)
        norm1 = LayerNorm(width: width)
        norm2 = LayerNorm(width: width)
        dropout = Dropout(probability: probability)
        self.activation = activation
    }

    /// `source` `[B, L, D]`, `position` (broadcastable to it) or nil, padding mask over `L`.
    public func callAsFunction(_ source: Variable, position: Variable?, keyPaddingMask: KeyPaddingMask?,
                               context: ForwardContext) -> Variable {
        let queryKey = position.map { source + $0 } ?? source
        let attended = selfAttention(query: queryKey, key: queryKey, value: source,
                                     keyPaddingMask: keyPaddingMask, context: context)
        let x = norm1(source, adding: attended, dropout: dropout, context: context)
        let fed = linear2(linear1(x, activation: activation.pointwise, dropout: dropout, context: context))
        return norm2(x, adding: fed, dropout: dropout, context: context)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: selfAttention, prefix: "self_attn") + parameters(of: linear1, prefix: "linear1")
            + parameters(of: linear2, prefix: "linear2") + parameters(of: norm1, prefix: "norm1")
            + parameters(of: norm2, prefix: "norm2")
    }
}

/// The non-linearity inside a transformer layer's feed-forward block.
public enum FeedForwardActivation: Sendable, Equatable {
    case relu
    case gelu

    func callAsFunction(_ x: Variable) -> Variable {
        switch self {
        case .relu: return x.relu()
        case .gelu: return x.gelu()
        }
    }

    /// The same function for the fused kernels.
    var pointwise: PointwiseActivation {
        switch self {
        case .relu: return .relu
        case .gelu: return .gelu
        }
    }
}
