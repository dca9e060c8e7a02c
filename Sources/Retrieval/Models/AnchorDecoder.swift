import NN
import Tensor

/// A DAB-DETR decoder layer as QD-DETR uses it.
///
/// Self-attention over the queries with separate content and position projections
/// (`q = Wqc t + Wqp p`, `k = Wkc t + Wkp p`, `v = Wv t`); conditional cross-attention whose queries and
/// keys are, per head, the content part concatenated with a positional part (the projected anchor sine
/// embedding for queries, the projected memory positions for keys), so each head scores
/// `(q_c . k_c + q_s . k_p) / sqrt(2 D / H)`; only the first layer also adds the query position to the
/// query content and the memory position to the key content. Then a PReLU feed-forward block; every
/// sub-block is post-norm.
public final class AnchorDecoderLayer: Module {
    public let heads: Int
    public let attentionDropout: Float
    public let selfQueryContent: Linear
    public let selfQueryPosition: Linear
    public let selfKeyContent: Linear
    public let selfKeyPosition: Linear
    public let selfValue: Linear
    public let selfOutput: Linear
    public let norm1: LayerNorm
    public let crossQueryContent: Linear
    /// Present on the first layer only (the reference deletes it from the others).
    public let crossQueryPosition: Linear?
    public let crossKeyContent: Linear
    public let crossKeyPosition: Linear
    public let crossValue: Linear
    public let crossQuerySine: Linear
    public let crossOutput: Linear
    public let norm2: LayerNorm
    public let feedForward: PReLUFeedForward
    public let dropout: Dropout

    public init(width: Int, heads: Int, feedForwardWidth: Int, dropout probability: Float, isFirst: Bool,
                generator: inout SeededGenerator) {
        precondition(width % heads == 0, "AnchorDecoderLayer: width \(width) not divisible by \(heads) heads")
        self.heads = heads
        attentionDropout = probability
        func linear(zeroBias: Bool = false) -> Linear {
            Linear(inFeatures: width, outFeatures: width, zeroBias: zeroBias, generator: &generator)
        }
        selfQueryContent = linear()
        selfQueryPosition = linear()
        selfKeyContent = linear()
        selfKeyPosition = linear()
        selfValue = linear()
        selfOutput = linear(zeroBias: true)
        norm1 = LayerNorm(width: width)
        crossQueryContent = linear()
        crossQueryPosition = isFirst ? linear() : nil
        crossKeyContent = linear()
        crossKeyPosition = linear()
        crossValue = linear()
        crossQuerySine = linear()
        crossOutput = linear(zeroBias: true)
        norm2 = LayerNorm(width: width)
        feedForward = PReLUFeedForward(width: width, hiddenWidth: feedForwardWidth, dropout: probability, generator: &generator)
        dropout = Dropout(probability: probability)
    }

    /// `target` `[B, N, D]`, `memory` and `memoryPosition` `[B, L, D]` with the memory padding mask,
    /// `queryPosition` and `querySine` `[B, N, D]` (the anchor's positional query and its scaled sine
    /// embedding). Returns the new target `[B, N, D]`.
    public func callAsFunction(_ target: Variable, memory: Variable, memoryPosition: Variable, memoryMask: KeyPaddingMask,
                               queryPosition: Variable, querySine: Variable, context: ForwardContext) -> Variable {
        let attentionDrop = context.isTraining ? attentionDropout : 0
        let selfQuery = selfQueryContent(target) + selfQueryPosition(queryPosition)
        let selfKey = selfKeyContent(target) + selfKeyPosition(queryPosition)
        let selfAttended = selfOutput(scaledDotProductAttention(
            query: selfQuery, key: selfKey, value: selfValue(target), heads: heads,
            dropout: attentionDrop, generator: &context.generator, rows: context.batchRows))
        let x1 = norm1(target, adding: selfAttended, dropout: dropout, context: context)

        var query = crossQueryContent(x1)
        var key = crossKeyContent(memory)
        let keyPosition = crossKeyPosition(memoryPosition)
        if let crossQueryPosition {
            query = query + crossQueryPosition(queryPosition)
            key = key + keyPosition
        }
        let crossAttended = crossOutput(Self.concatenatedHeadAttention(
            query: query, querySine: crossQuerySine(querySine), key: key, keyPosition: keyPosition,
            value: crossValue(memory), heads: heads, keyPaddingMask: memoryMask, dropout: attentionDrop,
            generator: &context.generator, rows: context.batchRows))
        let x2 = norm2(x1, adding: crossAttended, dropout: dropout, context: context)
        return feedForward(x2, context: context)
    }

    /// Attention whose per-head queries are `[query_h, querySine_h]` and keys `[key_h, keyPosition_h]`
    /// (width `2 D / H` per head, scale `1 / sqrt(2 D / H)`) over values of width `D / H` per head: the
    /// two-projection attention kernel, which gathers each head's concatenated rows in its own scratch.
    static func concatenatedHeadAttention(query: Variable, querySine: Variable, key: Variable, keyPosition: Variable,
                                          value: Variable, heads: Int, keyPaddingMask: KeyPaddingMask?,
                                          dropout: Float, generator: inout SeededGenerator,
                                          rows: BatchRows? = nil) -> Variable {
        scaledDotProductAttention(query: query, querySecond: querySine, key: key, keySecond: keyPosition, value: value,
                                  heads: heads, keyPaddingMask: keyPaddingMask, dropout: dropout, generator: &generator,
                                  rows: rows)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: selfQueryContent, prefix: "sa_qcontent_proj")
            + parameters(of: selfQueryPosition, prefix: "sa_qpos_proj")
            + parameters(of: selfKeyContent, prefix: "sa_kcontent_proj")
            + parameters(of: selfKeyPosition, prefix: "sa_kpos_proj")
            + parameters(of: selfValue, prefix: "sa_v_proj")
            + parameters(of: selfOutput, prefix: "self_attn.out_proj")
            + parameters(of: norm1, prefix: "norm1")
            + parameters(of: crossQueryContent, prefix: "ca_qcontent_proj")
        if let crossQueryPosition { list += parameters(of: crossQueryPosition, prefix: "ca_qpos_proj") }
        return list + parameters(of: crossKeyContent, prefix: "ca_kcontent_proj")
            + parameters(of: crossKeyPosition, prefix: "ca_kpos_proj")
            + parameters(of: crossValue, prefix: "ca_v_proj")
            + parameters(of: crossQuerySine, prefix: "ca_qpos_sine_proj")
            + parameters(of: crossOutput, prefix: "cross_attn.out_proj")
            + parameters(of: norm2, prefix: "norm2")
            + parameters(of: feedForward, prefix: "ffn")
    }
}

/// QD-DETR's DAB-style decoder: learnable anchors (center, width) refined layer by layer.
///
/// Per layer: the anchor's sine embedding (`D/2` features for the center, `D/2` for the width) gives
/// the positional query through `referencePointHead`; from the second layer on the embedding is scaled
/// element-wise by `queryScale(target)`; it is then modulated by `sigmoid(referenceAnchorHead(target)) /
/// anchor width`. After the layer, `spanRefinement` (shared, last bias initialised to zero) predicts an
/// offset in logit space; the refined anchor feeds the next layer detached.
public final class AnchorDecoder: Module {
    public let width: Int
    public let layers: [AnchorDecoderLayer]
    public let norm: LayerNorm
    public let queryScale: MLP
    public let referencePointHead: MLP
    public let spanRefinement: MLP
    public let referenceAnchorHead: MLP

    /// What the decoder hands to the prediction heads.
    public struct Output {
        /// Per layer, the normalised decoder state `[B, N, D]`.
        public let hidden: [Variable]
        /// Per layer, the anchors `[B, N, 2]` (sigmoid space) the layer started from; differentiable
        /// (the detached copies only feed the next layer's positional queries).
        public let references: [Variable]
    }

    public init(width: Int, heads: Int, feedForwardWidth: Int, layerCount: Int, dropout probability: Float,
                generator: inout SeededGenerator) {
        self.width = width
        layers = (0..<layerCount).map { index in
            AnchorDecoderLayer(width: width, heads: heads, feedForwardWidth: feedForwardWidth, dropout: probability,
                               isFirst: index == 0, generator: &generator)
        }
        norm = LayerNorm(width: width)
        queryScale = MLP(inputWidth: width, hiddenWidth: width, outputWidth: width, layerCount: 2, generator: &generator)
        referencePointHead = MLP(inputWidth: width, hiddenWidth: width, outputWidth: width, layerCount: 2, generator: &generator)
        spanRefinement = MLP(inputWidth: width, hiddenWidth: width, outputWidth: 2, layerCount: 3, generator: &generator)
        referenceAnchorHead = MLP(inputWidth: width, hiddenWidth: width, outputWidth: 1, layerCount: 2, generator: &generator)
        // The reference zeroes the refinement's last layer, then its transformer-wide Xavier reset draws the
        // weight again: only the bias stays zero.
        spanRefinement.layers[spanRefinement.layers.count - 1].bias?.assign(Tensor(zeros: [2]))
    }

    /// `memory`, `memoryPosition` `[B, L, D]` with the memory padding mask; `anchors` `[B, N, 2]` in
    /// sigmoid space (center, width).
    public func callAsFunction(memory: Variable, memoryPosition: Variable, memoryMask: KeyPaddingMask,
                               anchors: Variable, context: ForwardContext) -> Output {
        let (batch, queries) = (anchors.shape[0], anchors.shape[1])
        var target = Variable(Tensor(zeros: [batch, queries, width]))
        var reference = anchors
        var headReference = anchors
        var hidden: [Variable] = [], references: [Variable] = []
        for (index, layer) in layers.enumerated() {
            let sine = sineEmbedding(reference, featuresPerCoordinate: width / 2)
            let queryPosition = referencePointHead(sine)
            var querySine = index == 0 ? sine : sine * queryScale(target)
            let anchorWidth = reference.sliced(axis: 2, 1..<2)
            querySine = querySine * (referenceAnchorHead(target).sigmoid() / anchorWidth)
            target = layer(target, memory: memory, memoryPosition: memoryPosition, memoryMask: memoryMask,
                           queryPosition: queryPosition, querySine: querySine, context: context)
            hidden.append(norm(target))
            references.append(headReference)
            guard index < layers.count - 1 else { break }
            let refined = (spanRefinement(target) + SpanGeometry.inverseSigmoid(reference)).sigmoid()
            headReference = refined
            reference = Variable(refined.value)
        }
        return Output(hidden: hidden, references: references)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        layers.enumerated().flatMap { parameters(of: $0.element, prefix: "layers.\($0.offset)") }
            + parameters(of: norm, prefix: "norm") + parameters(of: queryScale, prefix: "query_scale")
            + parameters(of: referencePointHead, prefix: "ref_point_head")
            + parameters(of: spanRefinement, prefix: "bbox_embed")
            + parameters(of: referenceAnchorHead, prefix: "ref_anchor_head")
    }
}
