import NN
import Tensor

/// QD-DETR's text-to-video encoder layer, optionally with TD-DETR's temporal dynamics branch.
///
/// Video tokens (plus positions) attend to the text tokens (text key padding mask). As the reference
/// computes it, with `m = video + dropout(attention)`, the layer returns `norm2(m + FFN(norm1(m)))`: the
/// feed-forward block reads the normalised `m`, its skip connection carries `m` itself. The text and the
/// global token pass through unchanged. With a `TemporalDynamicsBranch`, the clip-to-clip differences
/// attend to the same text and are injected with ratio `beta` into `m`.
public final class TextToVideoLayer: Module {
    public let attention: MultiheadAttention
    public let norm: LayerNorm
    public let feedForward: PReLUFeedForward
    public let dropout: Dropout
    /// The TDEM branch, nil for QD-DETR.
    public let dynamics: TemporalDynamicsBranch?
    public let beta: Float

    public init(width: Int, heads: Int, feedForwardWidth: Int, dropout probability: Float,
                dynamics variant: TDEMVariant?, beta: Float, generator: inout SeededGenerator) {
        attention = MultiheadAttention(width: width, heads: heads, dropout: probability, generator: &generator)
        norm = LayerNorm(width: width)
        feedForward = PReLUFeedForward(width: width, hiddenWidth: feedForwardWidth, dropout: probability, generator: &generator)
        dropout = Dropout(probability: probability)
        dynamics = variant.map {
            TemporalDynamicsBranch(width: width, heads: heads, dropout: probability, variant: $0, generator: &generator)
        }
        self.beta = beta
    }

    /// `video` and `position` `[B, Lv, D]`, `text` `[B, Lq, D]` with its padding mask; `startToken`
    /// `[1, 1, D]` (the TDEM start token `st`, needed only with the dynamics branch); `blockedPairs`, a
    /// per-head mask of (clip, token) pairs (`referenceBlockedPairs`) or nil. Returns the new video
    /// tokens `[B, Lv, D]`.
    public func callAsFunction(video: Variable, position: Variable, text: Variable, textMask: KeyPaddingMask,
                               blockedPairs: [Bool]? = nil, startToken: Variable?, context: ForwardContext) -> Variable {
        let key = attention.keyProjection(text), value = attention.valueProjection(text)
        let attended = attention.outputProjection(scaledDotProductAttention(
            query: attention.queryProjection(video + position), key: key, value: value, heads: attention.heads,
            keyPaddingMask: textMask, blockedPairs: blockedPairs,
            dropout: context.isTraining ? attention.dropoutProbability : 0, generator: &context.generator, rows: context.batchRows))
        let mixed: Variable
        if let dynamics {
            guard let startToken else { preconditionFailure("TextToVideoLayer: the dynamics branch needs a start token") }
            let dynamicAttended = dynamics(video: video, position: position, startToken: startToken, text: text,
                                           sharedKey: key, sharedValue: value, textMask: textMask, blockedPairs: blockedPairs,
                                           context: context)
            // `.paper`: beta * (video + dropout(attended)) + (1 - beta) * dynamics; `.authorsCode`: beta * video +
            // (1 - beta) * dynamics + dropout(attended). One fused op either way.
            mixed = dynamicsMix(video: video, attended: attended, dynamics: dynamicAttended, beta: beta,
                                order: dynamics.variant == .paper ? .weightedResidual : .weightedVideo,
                                dropout: context.isTraining ? dropout.probability : 0, generator: &context.generator,
                                rows: context.batchRows)
        } else {
            mixed = video + dropout(attended, context: context)
        }
        return feedForward.norm(mixed, adding: feedForward.undroppedBranch(norm(mixed), context: context),
                                dropout: feedForward.dropout, context: context)
    }

    /// The reference's text-to-video attention mask, reproduced for parity tests only. It builds, per
    /// sample, `video clip is padding AND text token is padding`, then stacks the heads with
    /// `.repeat(nhead, 1, 1)` while attention reads the stack sample-major, so head `h` of sample `b` gets
    /// the mask of sample `(b * heads + h) % B`: valid tokens of `b` are hidden from the clips that are
    /// padding in that other sample, and a sample's outputs depend on its batch neighbours. Flags
    /// `[B, heads, Lv, Lq]`, true = blocked.
    public static func referenceBlockedPairs(videoMask: KeyPaddingMask, textMask: KeyPaddingMask, heads: Int) -> [Bool] {
        precondition(videoMask.batch == textMask.batch, "referenceBlockedPairs: \(videoMask.batch) videos, \(textMask.batch) texts")
        let (batch, clips, tokens) = (videoMask.batch, videoMask.length, textMask.length)
        var blocked = [Bool](repeating: false, count: batch * heads * clips * tokens)
        for b in 0..<batch {
            for h in 0..<heads {
                let other = (b * heads + h) % batch, slice = (b * heads + h) * clips * tokens
                for t in 0..<clips where videoMask.isPadding[other * clips + t] {
                    for k in 0..<tokens where textMask.isPadding[other * tokens + k] { blocked[slice + t * tokens + k] = true }
                }
            }
        }
        return blocked
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: attention, prefix: "cross_attn") + parameters(of: norm, prefix: "norm1")
            + parameters(of: feedForward, prefix: "ffn")
        if let dynamics { list += parameters(of: dynamics, prefix: "dynamics") }
        return list
    }
}

/// TD-DETR's temporal dynamics branch (paper section 3.2, supplement section 6).
///
/// Tokenizer: `T = {v1 - st, v2 - v1, ..., vL - v(L-1)}` over the layer's video tokens (`.paper`) or
/// video tokens plus positions (`.authorsCode`; padded tail positions are differenced too), then its own
/// projection: two LayerNorm-Dropout-Linear-ReLU blocks, as the authors' code (whose blocks are QD-DETR's
/// `LinearLayer` with its default dropout 0.1, hard-wired: `.authorsCode` keeps 0.1 whatever the transformer
/// dropout). Interactor: multi-head attention of the dynamics over the text (attention dropout = the
/// transformer's), with its own query and output projections; the keys and values are the video branch's
/// (`.paper`: "share the same text") or its own projections of the same text (`.authorsCode`, a second
/// `nn.MultiheadAttention` whose packed query/key/value weight is Xavier over `[3D, D]`, biases zero).
public final class TemporalDynamicsBranch: Module {
    /// The dropout of the authors' code's projection blocks (`LinearLayer`'s default, not `--dropout`).
    public static let authorsCodeProjectionDropout: Float = 0.1

    public let variant: TDEMVariant
    public let heads: Int
    public let attentionDropout: Float
    public let projection: InputProjection
    public let queryProjection: Linear
    public let keyProjection: Linear?
    public let valueProjection: Linear?
    public let outputProjection: Linear

    public init(width: Int, heads: Int, dropout probability: Float, variant: TDEMVariant, generator: inout SeededGenerator) {
        self.variant = variant
        self.heads = heads
        attentionDropout = probability
        projection = InputProjection(inputWidth: width, outputWidth: width, blocks: 2,
                                     dropout: variant == .authorsCode ? Self.authorsCodeProjectionDropout : probability,
                                     reluAfterLast: true, generator: &generator)
        if variant == .authorsCode {
            let packed = LinearInitialization.uniform(bound: (6 / Float(4 * width)).squareRoot())
            queryProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
            keyProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
            valueProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, initialization: packed, generator: &generator)
        } else {
            queryProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
            keyProjection = nil
            valueProjection = nil
        }
        outputProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
    }

    /// The clip-to-clip differences `[B, Lv, D]` of `tokens`, the first taken against `startToken` `[1, 1, D]`.
    public static func temporalDifferences(_ tokens: Variable, startToken: Variable) -> Variable {
        NN.temporalDifferences(tokens, start: startToken)
    }

    /// The tokenizer's output `[B, Lv, D]`: the differences of the video tokens (`.paper`) or of the video
    /// tokens plus positions (`.authorsCode`), the first against the start token.
    public func dynamicsTokens(video: Variable, position: Variable, startToken: Variable) -> Variable {
        Self.temporalDifferences(variant == .paper ? video : video + position, startToken: startToken)
    }

    /// The text-guided dynamics `T'` `[B, Lv, D]`. `blockedPairs` is the text-to-video attention's per-head
    /// mask (the reference's, under `ModelConfig.referenceTextToVideoMask`; the authors' code builds the same
    /// one for this attention from the same video padding), or nil.
    public func callAsFunction(video: Variable, position: Variable, startToken: Variable, text: Variable,
                               sharedKey: Variable, sharedValue: Variable, textMask: KeyPaddingMask,
                               blockedPairs: [Bool]? = nil, context: ForwardContext) -> Variable {
        let dynamics = projection(dynamicsTokens(video: video, position: position, startToken: startToken), context: context)
        let key = keyProjection.map { $0(text) } ?? sharedKey
        let value = valueProjection.map { $0(text) } ?? sharedValue
        let attended = scaledDotProductAttention(
            query: queryProjection(dynamics), key: key, value: value, heads: heads, keyPaddingMask: textMask,
            blockedPairs: blockedPairs, dropout: context.isTraining ? attentionDropout : 0,
            generator: &context.generator, rows: context.batchRows)
        return outputProjection(attended)
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: projection, prefix: "proj") + parameters(of: queryProjection, prefix: "q_proj")
        if let keyProjection { list += parameters(of: keyProjection, prefix: "k_proj") }
        if let valueProjection { list += parameters(of: valueProjection, prefix: "v_proj") }
        return list + parameters(of: outputProjection, prefix: "out_proj")
    }
}
