import Foundation
import NN
import Tensor

/// What `CDNet.forward` returns.
public struct CDNetOutputs {
    /// `[B, Lv, D]` projected video tokens `V` (what the guidance losses align with the query).
    public let video: Variable
    /// Global query, video-guided text tokens, relevance score and disentangled video.
    public let disentanglement: DisentanglementOutputs
    /// `[B, Lv, D]` tokens after denoising (the disentangled ones when denoising is off).
    public let denoised: Variable
    /// `[B, Lv]` per-clip confidence logits (foreground when positive).
    public let confidence: Variable
    /// `[B, Lv, 2]` per-clip distances `(left, right)` from the clip centre to the predicted window's
    /// boundaries, as fractions of the duration, in `(0, 1)`.
    public let offsets: Variable
}

/// CDNet (Context Denoising Network, `papers/cdnet.txt`): query-guided semantic disentanglement, context-
/// aware dynamic denoising and a dense convolutional prediction head.
///
/// Pipeline: input projections of clips and words to `d` (Moment-DETR's LayerNorm-Dropout-Linear-ReLU
/// blocks, the paper's "two linear projections (MLP)") -> `QuerySemanticDisentanglement` -> (optionally)
/// `ContextDenoising` -> the final localizer -> two `ConvolutionalHead`s on the video tokens.
///
/// The final localizer (section 3.3): "the representations are concatenated and fed into the final
/// localizer", whose operands were lost. Read here as the denoised video tokens and the text tokens
/// concatenated along time and encoded by `localizerLayers` post-norm transformer encoder layers (the
/// Moment-DETR encoder, sine positions on the clips and none on the words), after which the heads run on
/// the video part. This is what makes the paper's baseline (table 4, no QSD and no CDD) a working
/// retriever: the localizer is then its only text-video interaction.
///
/// Prediction: each valid clip proposes the window `[c - left, c + right]` with the sigmoid of its
/// confidence as score; windows are ranked, suppressed by temporal NMS at `nmsThreshold` and the first
/// `maxMoments` kept. Saliency is the relevance score (the paper evaluates highlight detection with it) or
/// the confidence (`saliencySource`).
public final class CDNet: MomentModel {
    public let config: CDNetConfig
    public let videoProjection: InputProjection
    public let textProjection: InputProjection
    public let disentanglement: QuerySemanticDisentanglement
    /// Nil when the denoising switch is off.
    public let denoising: ContextDenoising?
    public let localizer: [TransformerEncoderLayer]
    public let confidenceHead: ConvolutionalHead
    public let boundaryHead: ConvolutionalHead
    let positionEncoding: SinePositionalEncoding

    public init(config: CDNetConfig, generator: inout SeededGenerator) {
        config.validate()
        self.config = config
        let d = config.hiddenWidth
        videoProjection = InputProjection(inputWidth: config.videoFeatureWidth, outputWidth: d, blocks: config.inputProjectionLayers,
                                          dropout: config.inputDropout, generator: &generator)
        textProjection = InputProjection(inputWidth: config.textFeatureWidth, outputWidth: d, blocks: config.inputProjectionLayers,
                                         dropout: config.inputDropout, generator: &generator)
        disentanglement = QuerySemanticDisentanglement(
            width: d, heads: config.heads, dropout: config.dropout, dropPath: config.dropPath,
            fineGrained: config.fineGrainedGuidance, multipliesRelevance: config.relevanceScore,
            relevanceInitialScale: config.relevanceInitialScale, generator: &generator)
        denoising = config.denoising
            ? ContextDenoising(width: d, heads: config.heads, downsampling: config.downsamplingFactor,
                               offsetKernel: config.offsetKernel, offsetGroups: config.offsetGroups,
                               offsetRange: config.offsetRange, dropout: config.dropout, dropPath: config.dropPath,
                               generator: &generator)
            : nil
        localizer = (0..<config.localizerLayers).map { _ in
            TransformerEncoderLayer(width: d, heads: config.heads, feedForwardWidth: config.feedForwardWidth,
                                    dropout: config.dropout, generator: &generator)
        }
        confidenceHead = ConvolutionalHead(width: d, outputWidth: 1, kernel: config.headKernel, generator: &generator)
        boundaryHead = ConvolutionalHead(width: d, outputWidth: 2, kernel: config.headKernel, generator: &generator)
        positionEncoding = SinePositionalEncoding(featureCount: d)
    }

    /// Runs the model on `batch`.
    public func forward(_ batch: MomentBatch, context: ForwardContext) -> CDNetOutputs {
        precondition(batch.videoFeatures.shape[2] == config.videoFeatureWidth && batch.textFeatures.shape[2] == config.textFeatureWidth,
                     "CDNet: batch has video width \(batch.videoFeatures.shape[2]) and text width \(batch.textFeatures.shape[2]); "
                        + "the model was built for \(config.videoFeatureWidth) and \(config.textFeatureWidth)")
        let (b, length) = (batch.batchSize, batch.videoLength)
        let video = videoProjection(Variable(batch.videoFeatures), context: context)
        let text = textProjection(Variable(batch.textFeatures), context: context)
        let disentangled = disentanglement(video: video, text: text, videoMask: batch.videoMask, textMask: batch.textMask,
                                           context: context)
        let denoised = denoising.map { $0(disentangled.video, videoMask: batch.videoMask, context: context) }
            ?? disentangled.video
        let clips = localize(denoised, text: text, batch: batch, context: context)
        let confidence = confidenceHead(clips, videoMask: batch.videoMask).reshaped([b, length])
        let offsets = boundaryHead(clips, videoMask: batch.videoMask).sigmoid()
        return CDNetOutputs(video: video, disentanglement: disentangled, denoised: denoised, confidence: confidence,
                            offsets: offsets)
    }

    /// The localizer over `[video; text]`; returns the video part `[B, Lv, D]`.
    func localize(_ video: Variable, text: Variable, batch: MomentBatch, context: ForwardContext) -> Variable {
        guard !localizer.isEmpty else { return video }
        let (b, length, words) = (batch.batchSize, batch.videoLength, batch.textFeatures.shape[1])
        let position = concat([Variable(positionEncoding.encode(validity: batch.videoMask)),
                               Variable(Tensor(zeros: [b, words, config.hiddenWidth]))], axis: 1)
        let mask = KeyPaddingMask(validity: ShapeKernels.concat([batch.videoMask, batch.textMask], axis: 1))
        var sequence = concat([video, text], axis: 1)
        for layer in localizer {
            sequence = layer(sequence, position: position, keyPaddingMask: mask, context: context)
        }
        return sequence.sliced(axis: 1, 0..<length)
    }

    /// The training objective of `outputs` (see `CDNetCriterion`); `generator` draws the contrastive anchors
    /// (with `rows`, the whole batch's anchors of those samples).
    public func loss(_ outputs: CDNetOutputs, batch: MomentBatch, generator: inout SeededGenerator,
                     rows: BatchRows? = nil) -> (total: Variable, terms: [String: Float]) {
        CDNetCriterion(config: config)(outputs, batch: batch, generator: &generator, rows: rows)
    }

    public func trainingLoss(_ batch: MomentBatch, context: ForwardContext) -> (total: Variable, terms: [String: Float]) {
        let outputs = forward(batch, context: context)
        return loss(outputs, batch: batch, generator: &context.generator, rows: context.batchRows)
    }

    /// Inference without gradients or dropout: per sample, up to `maxMoments` windows in seconds sorted by
    /// score after NMS, and one saliency score per valid clip.
    public func predict(_ batch: MomentBatch) -> [MomentRetrieval] {
        GradientMode.withoutGradients {
            retrievals(from: forward(batch, context: ForwardContext(isTraining: false)), batch: batch)
        }
    }

    /// Decodes outputs (of any forward pass) into windows in seconds and per-clip saliency.
    public func retrievals(from outputs: CDNetOutputs, batch: MomentBatch) -> [MomentRetrieval] {
        let confidence = outputs.confidence.value, offsets = outputs.offsets.value
        let relevance = outputs.disentanglement.relevance.value
        return (0..<batch.batchSize).map { row in
            let clips = batch.validClipCount(row)
            let duration = Double(batch.durations[row])
            var candidates: [ScoredWindow] = []
            var scores: [Float] = []
            for t in 0..<clips {
                let center = DenseMomentTargets.clipCenter(t, validClips: clips)
                let start = min(max(center - offsets[row, t, 0], 0), 1), end = min(max(center + offsets[row, t, 1], 0), 1)
                let score = 1 / (1 + Foundation.exp(-confidence[row, t]))
                scores.append(score)
                candidates.append(ScoredWindow(start: Double(start) * duration, end: Double(end) * duration, score: Double(score)))
            }
            let kept = TemporalNMS.suppress(candidates, threshold: Double(config.nmsThreshold)).prefix(config.maxMoments)
            let windows = kept.map { RetrievedMoment(start: Float($0.start), end: Float($0.end), score: Float($0.score)) }
            let saliency = config.saliencySource == .relevance ? (0..<clips).map { relevance[row, $0] } : scores
            return MomentRetrieval(windows: windows, saliency: saliency)
        }
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var list = parameters(of: videoProjection, prefix: "input_vid_proj")
            + parameters(of: textProjection, prefix: "input_txt_proj")
            + parameters(of: disentanglement, prefix: "qsd")
        if let denoising { list += parameters(of: denoising, prefix: "cdd") }
        list += localizer.enumerated().flatMap { parameters(of: $0.element, prefix: "localizer.\($0.offset)") }
        return list + parameters(of: confidenceHead, prefix: "confidence_head")
            + parameters(of: boundaryHead, prefix: "boundary_head")
    }
}
