import Tensor

/// Multi-head attention with separate query/key/value projections and an output projection
/// (PyTorch's `nn.MultiheadAttention` semantics, batch-first `[B, L, D]`). Dropout applies to the
/// attention weights. As PyTorch initialises its packed `[3D, D]` input projection, the query, key and
/// value weights are Xavier uniform over that packed shape (`U(-a, a)`, `a = sqrt(6 / 4D)`); the output
/// projection is Xavier uniform over `[D, D]`; every bias is zero.
public final class MultiheadAttention: Module {
    public let width: Int
    public let heads: Int
    public let dropoutProbability: Float
    public let queryProjection: Linear
    public let keyProjection: Linear
    public let valueProjection: Linear
    public let outputProjection: Linear

    public init(width: Int, heads: Int, dropout: Float = 0, generator: inout SeededGenerator) {
        precondition(width % heads == 0, "MultiheadAttention: width \(width) not divisible by \(heads) heads")
        self.width = width
        self.heads = heads
        dropoutProbability = dropout
        let packed = LinearInitialization.uniform(bound: (6 / Float(4 * width)).squareRoot())
        queryProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
        keyProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
        valueProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
        outputProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
    }

    /// Attention of `query` `[B, Lq, D]` over `key`/`value` `[B, Lk, D]`; keys flagged in
    /// `keyPaddingMask` are ignored.
    public func callAsFunction(query: Variable, key: Variable, value: Variable,
                               keyPaddingMask: KeyPaddingMask? = nil, context: ForwardContext) -> Variable {
        let attended = scaledDotProductAttention(
            query: queryProjection(query), key: keyProjection(key), value: valueProjection(value),
            heads: heads, keyPaddingMask: keyPaddingMask,
            dropout: context.isTraining ? dropoutProbability : 0, generator: &context.generator,
            rows: context.batchRows)
        return outputProjection(attended)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: queryProjection, prefix: "q_proj") + parameters(of: keyProjection, prefix: "k_proj")
            + parameters(of: valueProjection, prefix: "v_proj") + parameters(of: outputProjection, prefix: "out_proj")
    }
}
