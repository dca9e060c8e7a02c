import NN
import Tensor

/// The CDNet objective (paper eq. 17): `0.1 (L_intra + L_inter + L_token) + L_focal + L_smoothL1 + L_gIoU`
/// with the weights of `CDNetConfig.weights`. `terms` holds each unweighted term (`loss_intra`,
/// `loss_inter`, `loss_token`, `loss_focal`, `loss_smooth_l1`, `loss_giou`) and `loss_total`, the weighted
/// sum, as `MomentCriterion` does.
///
/// Interpretations (the paper's formulas were lost in extraction):
/// - Contrastive terms are InfoNCE over cosine similarities divided by `contrastiveTemperature`, each a
///   mean over the samples that have a positive clip. The anchor of sample `b` is one positive clip `p_b`
///   drawn uniformly from its positive clips (see `DenseMomentTargets`).
///   - `L_intra` (eq. 1): `-log softmax` of `cos(v_p, g_b)` among `{cos(v_p, g_b)} + {cos(v_n, g_b)}` for
///     the negative clips `n` of the same video.
///   - `L_inter` (eq. 2): `-log softmax` of `cos(v_{p_b}, g_b)` among `cos(v_{p_b}, g_k)` for every sample
///     `k` of the batch (the other samples' global queries are the negatives).
///   - `L_token` (eq. 4): as `L_intra` with each clip scored against its own video-guided text token,
///     `cos(v_i, t^_i)`, instead of against `g`.
///   The video tokens `v` are the projected clip features `V` the paper's guidance is applied to.
/// - `L_focal` (eq. 14-15): sigmoid focal loss on the per-clip confidence over the valid clips (target 1
///   at positive clips), `alpha` off by default as the paper's formula has none, summed and divided by the
///   number of positive clips (RetinaNet's normalisation).
/// - Boundary terms (eq. 16) at positive clips: smooth L1 between the predicted and target `(left, right)`
///   distances (fractions of the duration; mean over clips and both sides), and `1 - gIoU` between the
///   predicted window `[c - left, c + right]` and the clip's ground-truth window (mean over clips).
///   Offsets are fractions of the duration: the scale of the windows, whatever the video's length.
/// - The paper's mention of a Hungarian matcher is not taken: a dense head assigns targets per clip.
public struct CDNetCriterion {
    public var config: CDNetConfig

    public init(config: CDNetConfig) {
        self.config = config
    }

    /// The loss of `outputs` against `batch`; `generator` draws the contrastive anchors (with `rows`, the whole
    /// batch's anchors of those samples).
    public func callAsFunction(_ outputs: CDNetOutputs, batch: MomentBatch, generator: inout SeededGenerator,
                               rows: BatchRows? = nil) -> (total: Variable, terms: [String: Float]) {
        let targets = DenseMomentTargets(windows: batch.windows, videoMask: batch.videoMask)
        var total = Variable(Tensor(scalar: 0))
        var terms: [String: Float] = [:]
        func add(_ name: String, _ term: Variable, weight: Float) {
            terms[name] = term.scalar
            if weight != 0 { total = total + term * weight }
        }
        let weights = config.weights, temperature = config.contrastiveTemperature
        let anchors = targets.samplePositiveClips(generator: &generator, rows: rows)
        if anchors.contains(where: { $0 != nil }) {
            let disentangled = outputs.disentanglement
            if config.globalGuidance {
                add("loss_intra", Self.intraVideoLoss(video: outputs.video, globalQuery: disentangled.globalQuery,
                                                      anchors: anchors, targets: targets, temperature: temperature),
                    weight: weights.intra)
                add("loss_inter", Self.interVideoLoss(video: outputs.video, globalQuery: disentangled.globalQuery,
                                                      anchors: anchors, temperature: temperature),
                    weight: weights.inter)
            }
            if config.fineGrainedGuidance, let guided = disentangled.guidedText {
                add("loss_token", Self.tokenLoss(video: outputs.video, guidedText: guided, anchors: anchors, targets: targets,
                                                 temperature: temperature),
                    weight: weights.token)
            }
        }
        if !targets.validIndices.isEmpty {
            add("loss_focal", Self.focalLoss(logits: outputs.confidence, targets: targets, alpha: config.focalAlpha,
                                             gamma: config.focalGamma),
                weight: weights.focal)
        }
        if !targets.positiveIndices.isEmpty {
            let (smoothL1, giou) = Self.boundaryLosses(offsets: outputs.offsets, targets: targets, beta: config.smoothL1Beta)
            add("loss_smooth_l1", smoothL1, weight: weights.smoothL1)
            add("loss_giou", giou, weight: weights.giou)
        }
        terms["loss_total"] = total.scalar
        return (total, terms)
    }

    /// Eq. 1: each anchor against the negative clips of its own video, scored by cosine to `g`.
    public static func intraVideoLoss(video: Variable, globalQuery: Variable, anchors: [Int?], targets: DenseMomentTargets,
                                      temperature: Float) -> Variable {
        let (b, length) = (video.shape[0], video.shape[1])
        let scores = CDNetOps.cosineSimilarities(video, globalQuery).reshaped([b, length]) / temperature
        return clipContrastiveLoss(scores: scores, anchors: anchors, targets: targets)
    }

    /// Eq. 4: each anchor against the negative clips of its own video, each clip scored by cosine to its
    /// own video-guided text token.
    public static func tokenLoss(video: Variable, guidedText: Variable, anchors: [Int?], targets: DenseMomentTargets,
                                 temperature: Float) -> Variable {
        let scores = (CDNetOps.normalized(video) * CDNetOps.normalized(guidedText)).sum(axis: 2) / temperature
        return clipContrastiveLoss(scores: scores, anchors: anchors, targets: targets)
    }

    /// Eq. 2: each sample's anchor clip against the global queries of every sample of the batch.
    public static func interVideoLoss(video: Variable, globalQuery: Variable, anchors: [Int?], temperature: Float) -> Variable {
        let (b, width) = (video.shape[0], video.shape[2])
        let anchorTokens = gatherTime(video, indices: anchors.map { $0 ?? 0 }, count: 1).reshaped([1, b, width])
        let queries = globalQuery.reshaped([1, b, width])
        let scores = CDNetOps.cosineSimilarities(anchorTokens, queries).reshaped([b, b]) / temperature
        var positives = Tensor(zeros: [b, b])
        for row in 0..<b where anchors[row] != nil { positives[row, row] = 1 }
        return softmaxContrastiveLoss(scores, positives: positives)
    }

    /// InfoNCE over the clips of each video: the anchor is the positive column, the video's negative
    /// clips the other candidates (other positives and padding are excluded).
    static func clipContrastiveLoss(scores: Variable, anchors: [Int?], targets: DenseMomentTargets) -> Variable {
        let (b, length) = (targets.batch, targets.length)
        var positives = Tensor(zeros: [b, length])
        var candidates = targets.negative
        for row in 0..<b {
            guard let anchor = anchors[row] else { continue }
            positives[row, anchor] = 1
            candidates[row, anchor] = 1
        }
        return softmaxContrastiveLoss(scores, positives: positives, validColumns: candidates)
    }

    /// Eq. 14-15 over the valid clips of `logits` `[B, Lv]`, normalised by the number of positive clips.
    public static func focalLoss(logits: Variable, targets: DenseMomentTargets, alpha: Float, gamma: Float) -> Variable {
        let valid = targets.validIndices
        let flat = logits.reshaped([1, targets.batch * targets.length, 1])
        let selected = gatherTime(flat, indices: valid, count: valid.count).reshaped([valid.count])
        let labels = Tensor(shape: [valid.count]) { out in
            for (i, index) in valid.enumerated() { out[i] = targets.positive.data[index] }
        }
        let normaliser = Float(max(targets.positiveIndices.count, 1))
        return sigmoidFocalLoss(selected, labels, alpha: alpha, gamma: gamma, reduction: .sumOver(normaliser))
    }

    /// Eq. 16 at the positive clips of `offsets` `[B, Lv, 2]` (left, right): smooth L1 and `1 - gIoU`.
    public static func boundaryLosses(offsets: Variable, targets: DenseMomentTargets,
                                      beta: Float) -> (smoothL1: Variable, giou: Variable) {
        let indices = targets.positiveIndices, count = indices.count
        let flat = offsets.reshaped([1, targets.batch * targets.length, 2])
        let predicted = gatherTime(flat, indices: indices, count: count).reshaped([count, 2])
        let target = Tensor(shape: [count, 2]) { out in
            for i in 0..<count {
                out[2 * i] = targets.leftOffsets[i]
                out[2 * i + 1] = targets.rightOffsets[i]
            }
        }
        let smoothL1 = smoothL1Loss(predicted, target, beta: beta)
        let left = predicted.sliced(axis: 1, 0..<1), right = predicted.sliced(axis: 1, 1..<2)
        let centers = Variable(Tensor(shape: [count, 1], data: targets.clipCenters))
        let spans = concat([centers + (right - left) * 0.5, left + right], axis: 1)
        let targetSpans = Tensor(shape: [count, 2]) { out in
            for i in 0..<count {
                let start = targets.windowStarts[i], end = targets.windowEnds[i]
                out[2 * i] = (start + end) / 2
                out[2 * i + 1] = end - start
            }
        }
        let giou = SpanGeometry.generalizedIoULoss(predicted: spans, target: targetSpans).mean()
        return (smoothL1, giou)
    }
}
