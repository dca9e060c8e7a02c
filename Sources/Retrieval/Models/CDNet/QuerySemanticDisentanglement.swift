import NN
import Tensor

/// What query-guided semantic disentanglement produces for a batch.
public struct DisentanglementOutputs {
    /// `[B, 1, D]` global query `g`: the weighted pooling of the text tokens.
    public let globalQuery: Variable
    /// `[B, Lv, D]` video-guided text tokens (each clip's attention over the words), or nil without
    /// fine-grained guidance.
    public let guidedText: Variable?
    /// `[B, Lv]` relevance score of each clip, in `(0, 1)` (padding clips hold meaningless values).
    public let relevance: Variable
    /// `[B, Lv, D]` disentangled video tokens: the context-encoded tokens, times the relevance score
    /// when that switch is on.
    public let video: Variable
}

/// Query-guided semantic disentanglement (QSD, paper section 3.1).
///
/// Interpretations of the paper (whose formulas were lost in extraction):
/// - *Global query* (the weighted pooling of SPAN-style localizers): word logits `w^T t_j` from one learned
///   vector `w` (a bias-free `Linear(d, 1)`), a softmax over the valid words, `g = sum_j a_j t_j`.
/// - *Fine-grained guidance* (eq. 3): `T^ = MHA(query: V, key/value: T)` with the text padding masked; the
///   result has the shape of `V`, one video-guided text token per clip; it feeds only the token-level loss.
/// - *Language-guided context encoder* (eq. 6, after VLTVG's): a first attention gathers the words for each
///   clip, `C = MHA_1(V, T, T)`; a second aggregates video context with language-aware queries and keys,
///   `A = MHA_2(V + C + P, V + C + P, V)` over the valid clips (`P`: sine positions), then
///   `V_c = LayerNorm(V + droppath(A))`.
/// - *Relevance score* (eq. 7): `r_i = sigmoid(a cos(v^c_i, g) + b)` with a learned scale `a` (initialised
///   to `config.relevanceInitialScale`) and bias `b` (0). It has no loss of its own: it is computed in the
///   space the global guidance trains (cosine to `g`), which is why, as in the paper's table 4, it becomes a
///   useful highlight score as soon as global guidance is on, and it learns from the head's losses through
///   the product `V_d = r * V_c` when the relevance switch is on. With the switch off `V_d = V_c`.
public final class QuerySemanticDisentanglement: Module {
    public let pooling: Linear
    public let fineGrainedAttention: MultiheadAttention?
    public let wordAttention: MultiheadAttention
    public let contextAttention: MultiheadAttention
    public let contextNorm: LayerNorm
    /// Scale `a` and bias `b` of the relevance score, each `[1]`.
    public let relevanceScale: Variable
    public let relevanceBias: Variable
    public let multipliesRelevance: Bool
    public let dropPath: Float
    let positionEncoding: SinePositionalEncoding

    public init(width: Int, heads: Int, dropout: Float, dropPath: Float, fineGrained: Bool, multipliesRelevance: Bool,
                relevanceInitialScale: Float, generator: inout SeededGenerator) {
        pooling = Linear(inFeatures: width, outFeatures: 1, bias: false, generator: &generator)
        fineGrainedAttention = fineGrained
            ? MultiheadAttention(width: width, heads: heads, dropout: dropout, generator: &generator) : nil
        wordAttention = MultiheadAttention(width: width, heads: heads, dropout: dropout, generator: &generator)
        contextAttention = MultiheadAttention(width: width, heads: heads, dropout: dropout, generator: &generator)
        contextNorm = LayerNorm(width: width)
        relevanceScale = Variable(Tensor(repeating: relevanceInitialScale, shape: [1]), requiresGrad: true)
        relevanceBias = Variable(Tensor(zeros: [1]), requiresGrad: true)
        self.multipliesRelevance = multipliesRelevance
        self.dropPath = dropPath
        positionEncoding = SinePositionalEncoding(featureCount: width)
    }

    /// `video` `[B, Lv, D]`, `text` `[B, Lq, D]`, validity masks `[B, Lv]` and `[B, Lq]` (1 = valid).
    public func callAsFunction(video: Variable, text: Variable, videoMask: Tensor, textMask: Tensor,
                               context: ForwardContext) -> DisentanglementOutputs {
        let (b, length) = (video.shape[0], video.shape[1])
        let textPadding = KeyPaddingMask(validity: textMask)
        let global = Self.weightedPooling(text, logits: pooling(text), textMask: textMask)

        let guided = fineGrainedAttention.map {
            $0(query: video, key: text, value: text, keyPaddingMask: textPadding, context: context)
        }

        let words = wordAttention(query: video, key: text, value: text, keyPaddingMask: textPadding, context: context)
        let position = Variable(positionEncoding.encode(validity: videoMask))
        let languageAware = video + words + position
        let aggregated = contextAttention(query: languageAware, key: languageAware, value: video,
                                          keyPaddingMask: KeyPaddingMask(validity: videoMask), context: context)
        let encoded = contextNorm(video + CDNetOps.dropPath(aggregated, probability: dropPath, context: context))

        let cosine = CDNetOps.cosineSimilarities(encoded, global).reshaped([b, length])
        let relevance = (cosine * relevanceScale + relevanceBias).sigmoid()
        let disentangled = multipliesRelevance ? encoded * relevance.reshaped([b, length, 1]) : encoded
        return DisentanglementOutputs(globalQuery: global, guidedText: guided, relevance: relevance, video: disentangled)
    }

    /// `sum_j softmax_j(logits) t_j` over the valid words: `text` `[B, Lq, D]`, `logits` `[B, Lq, 1]`,
    /// giving `[B, 1, D]`.
    static func weightedPooling(_ text: Variable, logits: Variable, textMask: Tensor) -> Variable {
        let (b, words) = (text.shape[0], text.shape[1])
        let offset = Tensor(shape: [b, words]) { out in
            for i in 0..<out.count { out[i] = textMask.data[i] > 0.5 ? 0 : -1e9 }
        }
        let weights = (logits.reshaped([b, words]) + Variable(offset)).softmax(axis: 1)
        return matmul(weights.reshaped([b, 1, words]), text)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: pooling, prefix: "pooling")
        if let fineGrainedAttention { list += parameters(of: fineGrainedAttention, prefix: "fine_grained_attn") }
        return list + parameters(of: wordAttention, prefix: "context_encoder.word_attn")
            + parameters(of: contextAttention, prefix: "context_encoder.context_attn")
            + parameters(of: contextNorm, prefix: "context_encoder.norm")
            + [(name: "relevance.scale", parameter: relevanceScale), (name: "relevance.bias", parameter: relevanceBias)]
    }
}
