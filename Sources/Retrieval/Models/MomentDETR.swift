import Foundation
import NN
import Tensor

/// One decoder layer's predictions.
public struct DecoderPrediction {
    /// `[B, N, 2]` class logits, index 0 = foreground.
    public let logits: Variable
    /// `[B, N, 2]` normalised (center, width), in `(0, 1)`.
    public let spans: Variable
}

/// What `MomentDETR.forward` returns.
public struct MomentOutputs {
    /// Per decoder layer (last = final), logits and spans.
    public let layers: [DecoderPrediction]
    /// `[B, Lv]` saliency scores `<W1 m_i, W2 g> / sqrt(D)` (padding clips hold meaningless values).
    public let saliency: Variable
    /// `[B, Lv]` saliency of the video paired with the next sample's text (the negative pair), or nil
    /// when the forward pass skipped the negative run.
    public let negativeSaliency: Variable?

    /// The final layer's predictions.
    public var final: DecoderPrediction { layers[layers.count - 1] }
}

/// A predicted moment in seconds.
public struct RetrievedMoment: Sendable, Equatable {
    public var start: Float
    public var end: Float
    /// Foreground probability.
    public var score: Float
}

/// Per sample: its moments sorted by score (highest first) and one saliency score per valid clip.
public struct MomentRetrieval: Sendable, Equatable {
    public var windows: [RetrievedMoment]
    public var saliency: [Float]
}

/// QD-DETR, and TD-DETR when `config.tdem` is on.
///
/// Input projections -> text-to-video cross-attention layers (with the TDEM branch in TD-DETR) ->
/// self-attention encoder over `[global token, video]` -> DAB anchor decoder -> class and span heads;
/// saliency from the video memory and the global token, and again for the negative pairing (each
/// video with the next sample's text, the encoder run a second time).
///
/// Parameter count at the paper's QVHighlights configuration (`ModelConfig()`: video 2818, text 512,
/// d 256, 8 heads, FFN 1024, 2 + 2 + 2 layers, 10 queries) is 7,576,869; the reference QD-DETR code
/// reports 7,585,573. The difference, 8,704 = 32 x 256 + 2 x 256, is the reference's text positional
/// embedding (`TrainablePositionalEncoding`: a 32 x 256 embedding table plus a LayerNorm), which it builds
/// but never uses because `use_txt_pos` is off. Everything else matches layer by layer, including what
/// is easy to miss: one PReLU slope per transformer layer (6), the decoder's anchor-refinement MLP beside
/// the span head, and `ca_qpos_proj` existing in the first decoder layer only. TD-DETR adds 264,192 per
/// text-to-video layer (dynamics projection 132,608, its query and output projections 131,584) plus the
/// 256-wide start token: 8,105,509 in total (`.authorsCode` adds its own key/value projections, 263,168
/// more).
public final class MomentDETR: Module {
    public let config: ModelConfig
    public let videoProjection: InputProjection
    public let textProjection: InputProjection
    public let positionEncoding: SinePositionalEncoding
    /// The global (saliency) token `[1, 1, D]` and its learned position.
    public let globalToken: Variable
    public let globalPosition: Variable
    /// TDEM's learnable start token `st` `[1, 1, D]`, shared by the text-to-video layers; nil without TDEM.
    public let dynamicsStart: Variable?
    public let textToVideo: [TextToVideoLayer]
    public let encoder: [PReLUEncoderLayer]
    public let decoder: AnchorDecoder
    /// The `N` learnable anchors (center, width) in logit space.
    public let anchors: Embedding
    public let classHead: Linear
    public let spanHead: MLP
    public let saliencyVideoProjection: Linear
    public let saliencyGlobalProjection: Linear

    public init(config: ModelConfig, generator: inout SeededGenerator) {
        config.validate()
        self.config = config
        let d = config.hiddenWidth
        videoProjection = InputProjection(inputWidth: config.videoFeatureWidth, outputWidth: d, blocks: config.inputProjectionLayers,
                                          dropout: config.inputDropout, initialization: .pytorchDefault, generator: &generator)
        textProjection = InputProjection(inputWidth: config.textFeatureWidth, outputWidth: d, blocks: config.inputProjectionLayers,
                                         dropout: config.inputDropout, initialization: .pytorchDefault, generator: &generator)
        positionEncoding = SinePositionalEncoding(featureCount: d, temperature: 10000, normalize: true, scale: 2 * .pi)
        globalToken = Variable(Initialization.normal(shape: [1, 1, d], generator: &generator), requiresGrad: true)
        globalPosition = Variable(Initialization.normal(shape: [1, 1, d], generator: &generator), requiresGrad: true)
        dynamicsStart = config.tdem
            ? Variable(Initialization.normal(shape: [1, 1, d], generator: &generator), requiresGrad: true) : nil
        textToVideo = (0..<config.textToVideoLayers).map { _ in
            TextToVideoLayer(width: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth, dropout: config.dropout,
                             dynamics: config.tdem ? config.tdemVariant : nil, beta: config.beta, generator: &generator)
        }
        encoder = (0..<config.encoderLayers).map { _ in
            PReLUEncoderLayer(width: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                              dropout: config.dropout, generator: &generator)
        }
        decoder = AnchorDecoder(width: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                                layerCount: config.decoderLayers, dropout: config.dropout, generator: &generator)
        anchors = Embedding(count: config.queryCount, width: 2, generator: &generator)
        // Outside the transformer the reference leaves PyTorch's default initialisation.
        classHead = Linear(inFeatures: d, outFeatures: 2, initialization: .pytorchDefault, generator: &generator)
        spanHead = MLP(inputWidth: d, hiddenWidth: d, outputWidth: 2, layerCount: 3, initialization: .pytorchDefault,
                       generator: &generator)
        saliencyVideoProjection = Linear(inFeatures: d, outFeatures: d, initialization: .pytorchDefault, generator: &generator)
        saliencyGlobalProjection = Linear(inFeatures: d, outFeatures: d, initialization: .pytorchDefault, generator: &generator)
    }

    /// Runs the model. `negativePairs` adds the second encoder run on mismatched text needed by the
    /// negative-pair saliency loss (training); evaluation can skip it.
    public func forward(_ batch: MomentBatch, context: ForwardContext, negativePairs: Bool = true) -> MomentOutputs {
        checkWidths(batch)
        let (b, length) = (batch.batchSize, batch.videoLength)
        let video = videoProjection(Variable(batch.videoFeatures), context: context)
        // A slice of a larger batch projects its negative partner's text with its own (one dropout draw, as the whole).
        let projected = textProjection(Variable(batch.slice.map { ShapeKernels.concat([batch.textFeatures, $0.nextText], axis: 0) }
                                                    ?? batch.textFeatures), context: context)
        let text = batch.slice == nil ? projected : projected.sliced(axis: 0, 0..<b)
        let position = Variable(positionEncoding.encode(validity: batch.videoMask))
        let videoMask = KeyPaddingMask(validity: batch.videoMask)
        let encoderMask = KeyPaddingMask(batch: b, length: length + 1, isPadding: (0..<b).flatMap { row in
            [false] + videoMask.isPadding[(row * length)..<((row + 1) * length)]
        })
        let (memory, global) = encode(video: video, position: position, text: text,
                                      textMask: KeyPaddingMask(validity: batch.textMask), encoderMask: encoderMask, context: context)

        let initialAnchors = Variable(Tensor(zeros: [b, config.queryCount, 2])) + anchors.table.sigmoid()
        let decoded = decoder(memory: memory, memoryPosition: position, memoryMask: videoMask,
                              anchors: initialAnchors, context: context)
        let layers = zip(decoded.hidden, decoded.references).map { hidden, reference in
            DecoderPrediction(logits: classHead(hidden),
                              spans: (spanHead(hidden) + SpanGeometry.inverseSigmoid(reference)).sigmoid())
        }
        let saliency = saliencyScores(memory: memory, global: global)

        var negativeSaliency: Variable?
        if negativePairs {
            // Each video with the next sample's text (the last with the first), as the reference rolls the batch;
            // a slice's last video takes the next sample of the whole batch.
            let rolledText: Variable, rolledMask: Tensor
            if let slice = batch.slice {
                rolledText = b > 1 ? concat([text.sliced(axis: 0, 1..<b), projected.sliced(axis: 0, b..<(b + 1))], axis: 0)
                    : projected.sliced(axis: 0, b..<(b + 1))
                rolledMask = b > 1 ? ShapeKernels.concat([ShapeKernels.slice(batch.textMask, axis: 0, range: 1..<b), slice.nextTextMask], axis: 0)
                    : slice.nextTextMask
            } else {
                rolledText = b > 1 ? concat([text.sliced(axis: 0, 1..<b), text.sliced(axis: 0, 0..<1)], axis: 0) : text
                rolledMask = b > 1
                    ? ShapeKernels.concat([ShapeKernels.slice(batch.textMask, axis: 0, range: 1..<b),
                                           ShapeKernels.slice(batch.textMask, axis: 0, range: 0..<1)], axis: 0)
                    : batch.textMask
            }
            let (negativeMemory, negativeGlobal) = encode(video: video, position: position, text: rolledText,
                                                          textMask: KeyPaddingMask(validity: rolledMask),
                                                          encoderMask: encoderMask, context: context)
            negativeSaliency = saliencyScores(memory: negativeMemory, global: negativeGlobal)
        }
        return MomentOutputs(layers: layers, saliency: saliency, negativeSaliency: negativeSaliency)
    }

    /// The training objective of `outputs` against `batch` (see `MomentCriterion`).
    public func loss(_ outputs: MomentOutputs, batch: MomentBatch) -> (total: Variable, terms: [String: Float]) {
        MomentCriterion(config: config)(outputs, batch: batch)
    }

    /// Inference without gradients or dropout: per sample, up to `N` windows in seconds sorted by
    /// foreground probability, and the saliency of each valid clip.
    public func predict(_ batch: MomentBatch) -> [MomentRetrieval] {
        GradientMode.withoutGradients {
            let outputs = forward(batch, context: ForwardContext(isTraining: false), negativePairs: false)
            return Self.retrievals(from: outputs, batch: batch)
        }
    }

    /// Decodes outputs (of any forward pass) into windows in seconds and per-clip saliency.
    public static func retrievals(from outputs: MomentOutputs, batch: MomentBatch) -> [MomentRetrieval] {
        let logits = outputs.final.logits.value, spans = outputs.final.spans.value
        let (b, queries) = (spans.shape[0], spans.shape[1])
        let saliency = outputs.saliency.value
        return (0..<b).map { row in
            let duration = batch.durations[row]
            var windows: [RetrievedMoment] = (0..<queries).map { q in
                let foreground = 1 / (1 + Foundation.exp(logits[row, q, 1] - logits[row, q, 0]))
                let center = spans[row, q, 0], width = spans[row, q, 1]
                let start = min(max(center - width / 2, 0), 1) * duration
                let end = min(max(center + width / 2, 0), 1) * duration
                return RetrievedMoment(start: start, end: end, score: foreground)
            }
            windows.sort { $0.score > $1.score }
            let clips = batch.validClipCount(row)
            return MomentRetrieval(windows: windows, saliency: (0..<clips).map { saliency[row, $0] })
        }
    }

    /// Text-to-video layers then the self-attention encoder; returns the video memory `[B, Lv, D]`
    /// and the global token's memory `[B, 1, D]`.
    func encode(video: Variable, position: Variable, text: Variable, textMask: KeyPaddingMask,
                encoderMask: KeyPaddingMask, context: ForwardContext) -> (memory: Variable, global: Variable) {
        var tokens = video
        let blockedPairs = config.referenceTextToVideoMask
            ? TextToVideoLayer.referenceBlockedPairs(videoMask: Self.paddingOfVideo(encoderMask), textMask: textMask,
                                                     heads: config.heads)
            : nil
        for layer in textToVideo {
            tokens = layer(video: tokens, position: position, text: text, textMask: textMask, blockedPairs: blockedPairs,
                           startToken: dynamicsStart, context: context)
        }
        let (b, length, d) = (video.shape[0], video.shape[1], config.hiddenWidth)
        let zeros = Variable(Tensor(zeros: [b, 1, d]))
        var sequence = concat([zeros + globalToken, tokens], axis: 1)
        let sequencePosition = concat([zeros + globalPosition, position], axis: 1)
        for layer in encoder {
            sequence = layer(sequence, position: sequencePosition, keyPaddingMask: encoderMask, context: context)
        }
        return (sequence.sliced(axis: 1, 1..<(length + 1)), sequence.sliced(axis: 1, 0..<1))
    }

    /// The video part of the encoder's `[global, video]` padding mask.
    static func paddingOfVideo(_ encoderMask: KeyPaddingMask) -> KeyPaddingMask {
        let length = encoderMask.length - 1
        return KeyPaddingMask(batch: encoderMask.batch, length: length, isPadding: (0..<encoderMask.batch).flatMap { row in
            encoderMask.isPadding[(row * encoderMask.length + 1)..<((row + 1) * encoderMask.length)]
        })
    }

    /// `<W1 m_i, W2 g> / sqrt(D)` for every clip: `[B, Lv]`.
    func saliencyScores(memory: Variable, global: Variable) -> Variable {
        let (b, length) = (memory.shape[0], memory.shape[1])
        let scores = matmul(saliencyVideoProjection(memory), saliencyGlobalProjection(global), transposeB: true)
        return scores.reshaped([b, length]) * (1 / Float(config.hiddenWidth).squareRoot())
    }

    private func checkWidths(_ batch: MomentBatch) {
        precondition(batch.videoFeatures.shape[2] == config.videoFeatureWidth && batch.textFeatures.shape[2] == config.textFeatureWidth,
                     "MomentDETR: batch has video width \(batch.videoFeatures.shape[2]) and text width \(batch.textFeatures.shape[2]); "
                        + "the model was built for \(config.videoFeatureWidth) and \(config.textFeatureWidth)")
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: videoProjection, prefix: "input_vid_proj")
            + parameters(of: textProjection, prefix: "input_txt_proj")
            + [(name: "global_rep_token", parameter: globalToken), (name: "global_rep_pos", parameter: globalPosition)]
        if let dynamicsStart { list.append((name: "dynamics_start", parameter: dynamicsStart)) }
        list += textToVideo.enumerated().flatMap { parameters(of: $0.element, prefix: "t2v_encoder.\($0.offset)") }
        list += encoder.enumerated().flatMap { parameters(of: $0.element, prefix: "encoder.\($0.offset)") }
        return list + parameters(of: decoder, prefix: "decoder") + parameters(of: anchors, prefix: "query_embed")
            + parameters(of: classHead, prefix: "class_embed") + parameters(of: spanHead, prefix: "span_embed")
            + parameters(of: saliencyVideoProjection, prefix: "saliency_proj1")
            + parameters(of: saliencyGlobalProjection, prefix: "saliency_proj2")
    }
}
