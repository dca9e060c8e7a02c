import Tensor

/// A post-norm transformer decoder layer as in DETR: self-attention over the queries (query
/// positions added to queries and keys), cross-attention from queries to the memory (memory
/// positions added to keys), feed-forward; each followed by `norm(x + dropout(.))`.
public final class TransformerDecoderLayer: Module {
    public let selfAttention: MultiheadAttention
    public let crossAttention: MultiheadAttention
    public let linear1: Linear
    public let linear2: Linear
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let norm3: LayerNorm
    public let dropout: Dropout
    public let activation: FeedForwardActivation

    public init(width: Int, heads: Int, feedForwardWidth: Int, dropout probability: Float = 0.1,
                activation: FeedForwardActivation = .relu, generator: inout SeededGenerator) {
        selfAttention = MultiheadAttention(width: width, heads: heads, dropout: probability, generator: &generator)
        crossAttention = MultiheadAttention(width: width, heads: heads, dropout: probability, generator: &generator)
        linear1 = Linear(inFeatures: width, outFeatures: feedForwardWidth, generator: &generator)
        linear2 = Linear(inFeatures: feedForwardWidth, outFeatures: width, generator: &generator)
        norm1 = LayerNorm(width: width)
        norm2 = LayerNorm(width: width)
        norm3 = LayerNorm(width: width)
        dropout = Dropout(probability: probability)
        self.activation = activation
    }

    /// `target` `[B, Nq, D]` (queries), `memory` `[B, L, D]` with its padding mask, positional
    /// encodings for the memory (`position`) and the queries (`queryPosition`), each optional.
    public func callAsFunction(_ target: Variable, memory: Variable, memoryKeyPaddingMask: KeyPaddingMask?,
                               position: Variable?, queryPosition: Variable?, context: ForwardContext) -> Variable {
        let selfQueryKey = queryPosition.map { target + $0 } ?? target
        let selfAttended = selfAttention(query: selfQueryKey, key: selfQueryKey, value: target, context: context)
        let x1 = norm1(target, adding: selfAttended, dropout: dropout, context: context)
        let crossQuery = queryPosition.map { x1 + $0 } ?? x1
        let crossKey = position.map { memory + $0 } ?? memory
        let crossAttended = crossAttention(query: crossQuery, key: crossKey, value: memory,
                                           keyPaddingMask: memoryKeyPaddingMask, context: context)
        let x2 = norm2(x1, adding: crossAttended, dropout: dropout, context: context)
        let fed = linear2(linear1(x2, activation: activation.pointwise, dropout: dropout, context: context))
        return norm3(x2, adding: fed, dropout: dropout, context: context)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: selfAttention, prefix: "self_attn") + parameters(of: crossAttention, prefix: "cross_attn")
            + parameters(of: linear1, prefix: "linear1") + parameters(of: linear2, prefix: "linear2")
            + parameters(of: norm1, prefix: "norm1") + parameters(of: norm2, prefix: "norm2")
            + parameters(of: norm3, prefix: "norm3")
    }
}
