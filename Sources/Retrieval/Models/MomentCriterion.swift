import NN
import Tensor

/// The QD-DETR / TD-DETR objective, term by term as the reference computes it.
///
/// Moment terms (on the final decoder layer and, with auxiliary losses, on every earlier layer, each
/// matched again): span L1 on (center, width) averaged over matched pairs and both coordinates,
/// `1 - gIoU` averaged over matched pairs, and a class-weighted cross entropy (foreground 1, background
/// `backgroundWeight`) averaged over all `B * N` queries. Saliency terms (final outputs only): the
/// hinge over the sampled clip pairs, the rank-aware contrastive loss and the negative-pair loss.
/// `terms` holds each unweighted term (`loss_span`, `loss_giou`, `loss_label`, `_0`, `_1`, ... suffixes
/// for earlier layers, `loss_saliency_margin`, `loss_saliency_contrastive`, `loss_saliency_negative`)
/// and `loss_total`, the weighted sum.
public struct MomentCriterion {
    public var coefficients: LossCoefficients
    public var matcher: HungarianMatcher
    public var auxiliaryLosses: Bool
    public var saliencyMargin: Float
    public var backgroundWeight: Float
    public var rankTemperature: Float

    public init(config: ModelConfig) {
        coefficients = config.coefficients
        matcher = HungarianMatcher(coefficients: config.coefficients)
        auxiliaryLosses = config.auxiliaryLosses
        saliencyMargin = config.saliencyMargin
        backgroundWeight = config.backgroundWeight
        rankTemperature = config.rankTemperature
    }

    public func callAsFunction(_ outputs: MomentOutputs, batch: MomentBatch) -> (total: Variable, terms: [String: Float]) {
        var total = Variable(Tensor(scalar: 0))
        var terms: [String: Float] = [:]
        // A slice of a larger batch contributes its share: its per-sample means times its share of the samples.
        let share = batch.slice.map { Float(batch.batchSize) / Float($0.wholeSize) } ?? 1
        func add(_ name: String, _ term: Variable, weight: Float, scale: Float? = nil) {
            let scaled = batch.slice == nil ? term : term * (scale ?? share)
            terms[name] = scaled.scalar
            if weight != 0 { total = total + scaled * weight }
        }
        let last = outputs.layers.count - 1
        let layerIndices = auxiliaryLosses ? Array(0...last) : [last]
        for index in layerIndices {
            let prediction = outputs.layers[index]
            let suffix = index == last ? "" : "_\(index)"
            let matches = matcher.match(logits: prediction.logits.value, spans: prediction.spans.value, targets: batch.windows)
            if let (l1, giou) = Self.spanLosses(spans: prediction.spans, targets: batch.windows, matches: matches) {
                // The span terms are means over matched pairs: a slice's share is its pairs over the whole batch's
                // (each sample matches min(windows, queries) pairs).
                let queries = prediction.spans.shape[1]
                let wholePairs = batch.slice.map { $0.wholeWindowCounts.reduce(0) { $0 + min($1, queries) } } ?? 1
                let pairShare = Float(matches.reduce(0) { $0 + $1.count }) / Float(max(1, wholePairs))
                add("loss_span" + suffix, l1, weight: coefficients.span, scale: pairShare)
                add("loss_giou" + suffix, giou, weight: coefficients.giou, scale: pairShare)
            }
            add("loss_label" + suffix, Self.labelLoss(logits: prediction.logits, matches: matches, backgroundWeight: backgroundWeight),
                weight: coefficients.label)
        }
        if let saliency = batch.saliency {
            add("loss_saliency_margin", Self.hingeLoss(saliency: outputs.saliency, positives: saliency.positiveClips,
                                                       negatives: saliency.negativeClips, margin: saliencyMargin),
                weight: coefficients.margin)
            add("loss_saliency_contrastive",
                Self.rankContrastiveLoss(saliency: outputs.saliency, negativeSaliency: outputs.negativeSaliency,
                                         scores: saliency.scores, videoMask: batch.videoMask, temperature: rankTemperature),
                weight: coefficients.contrastive)
            if let negative = outputs.negativeSaliency {
                add("loss_saliency_negative", Self.negativePairLoss(negativeSaliency: negative, videoMask: batch.videoMask),
                    weight: coefficients.negative)
            }
        }
        terms["loss_total"] = total.scalar
        return (total, terms)
    }

    /// Span L1 (mean over matched pairs and both coordinates) and `1 - gIoU` (mean over matched pairs),
    /// or nil when no sample has a ground-truth window.
    public static func spanLosses(spans: Variable, targets: [[SpanTarget]],
                                  matches: [[(query: Int, target: Int)]]) -> (l1: Variable, giou: Variable)? {
        let (b, queries) = (spans.shape[0], spans.shape[1])
        var indices: [Int] = [], targetValues: [Float] = []
        for row in 0..<b {
            for pair in matches[row] {
                indices.append(row * queries + pair.query)
                let target = targets[row][pair.target]
                targetValues += [target.center, target.width]
            }
        }
        guard !indices.isEmpty else { return nil }
        let matched = gatherTime(spans.reshaped([1, b * queries, 2]), indices: indices, count: indices.count)
            .reshaped([indices.count, 2])
        let target = Tensor(shape: [indices.count, 2], data: targetValues)
        return (l1Loss(matched, target), SpanGeometry.generalizedIoULoss(predicted: matched, target: target).mean())
    }

    /// Cross entropy with targets foreground (0) for matched queries and background (1) otherwise, each
    /// query weighted by its class weight and the sum divided by `B * N` (not by the weights' sum).
    public static func labelLoss(logits: Variable, matches: [[(query: Int, target: Int)]], backgroundWeight: Float) -> Variable {
        let (b, queries) = (logits.shape[0], logits.shape[1])
        let rows = b * queries
        var weights = Tensor(zeros: [rows, 2])
        for row in 0..<rows { weights[row, 1] = backgroundWeight / Float(rows) }
        for (sample, pairs) in matches.enumerated() {
            for pair in pairs {
                let row = sample * queries + pair.query
                weights[row, 1] = 0
                weights[row, 0] = 1 / Float(rows)
            }
        }
        return -(logits.reshaped([rows, 2]).logSoftmax(axis: 1) * Variable(weights)).sum()
    }

    /// `sum(relu(margin + s_neg - s_pos)) / (B * P) * 2` over the sampled clip pairs.
    public static func hingeLoss(saliency: Variable, positives: [[Int]], negatives: [[Int]], margin: Float) -> Variable {
        let (b, length) = (saliency.shape[0], saliency.shape[1])
        let pairs = positives.first?.count ?? 0
        precondition(pairs > 0 && positives.allSatisfy { $0.count == pairs } && negatives.allSatisfy { $0.count == pairs },
                     "hingeLoss: every sample needs the same positive number of positive and negative clips")
        let scores = saliency.reshaped([b, length, 1])
        let positive = gatherTime(scores, indices: positives.flatMap { $0 }, count: pairs)
        let negative = gatherTime(scores, indices: negatives.flatMap { $0 }, count: pairs)
        return (margin + negative - positive).relu().sum() * (2 / Float(b * pairs))
    }

    /// The rank-aware contrastive loss: for each rank `k` in 1...11 that some clip of the batch reaches,
    /// the clips scoring `>= k` are positives of a softmax over all valid clips of the sample (and of its
    /// negative pairing, whose clips are never positive) at temperature `tau`; per sample the mean
    /// log-probability of its positives (`/ (#positives + 1e-6)`), negated, averaged over the batch
    /// (samples without positives count 0), summed over ranks and divided by 12.
    public static func rankContrastiveLoss(saliency: Variable, negativeSaliency: Variable?, scores: Tensor,
                                           videoMask: Tensor, temperature: Float) -> Variable {
        let (b, length) = (saliency.shape[0], saliency.shape[1])
        let all = negativeSaliency.map { concat([saliency, $0], axis: 1) } ?? saliency
        let columns = all.shape[1]
        let mask = Tensor(shape: [b, columns]) { out in
            for row in 0..<b { for j in 0..<columns { out[row * columns + j] = videoMask[row, j % length] } }
        }
        let labels = Tensor(shape: [b, columns]) { out in
            for row in 0..<b { for j in 0..<columns { out[row * columns + j] = j < length ? scores[row, j] : 0 } }
        }
        let offset = Elementwise.affine(mask, scale: 1000, shift: -1000)
        let logProbabilities = ((all * Variable(mask) + Variable(offset)) * (1 / temperature)).logSoftmax(axis: 1)
        var weights = Tensor(zeros: [b, columns])
        for rank in 1...11 {
            let threshold = Float(rank)
            guard labels.data.contains(where: { $0 >= threshold }) else { continue }
            for row in 0..<b {
                var positives: Float = 0
                for j in 0..<columns where labels[row, j] >= threshold { positives += 1 }
                guard positives > 0 else { continue }
                let share = 1 / ((positives + 1e-6) * Float(b))
                for j in 0..<columns where labels[row, j] >= threshold { weights[row, j] += share * mask[row, j] }
            }
        }
        return -(logProbabilities * Variable(weights)).sum() * (1 / 12)
    }

    /// `sum_i -log(1 - sigmoid(s_neg_i))` over each sample's valid clips, averaged over the batch
    /// (computed as the softplus, which is the same function without overflow).
    public static func negativePairLoss(negativeSaliency: Variable, videoMask: Tensor) -> Variable {
        let x = negativeSaliency
        let softplus = x.relu() + ((-x.abs()).exp() + 1).log()
        return (softplus * Variable(videoMask)).sum() * (1 / Float(x.shape[0]))
    }
}
