import Foundation
import NN
@testable import Retrieval
import XCTest

/// Every loss term against values worked out by hand from its definition.
final class MomentLossTests: XCTestCase {
    func testSpanL1AndGIoUOnMatchedPairs() {
        // Sample 0: query 1 (0.3, 0.4) = [0.1, 0.5] vs target [0.3, 0.5]: L1 0.1 + 0.2, IoU 0.2 / 0.4, hull 0.4 -> gIoU 0.5.
        // Sample 1: query 0 (0.5, 0.2) = [0.4, 0.6] vs target [0.85, 0.95]: L1 0.4 + 0.1, no overlap,
        // union 0.3, hull 0.55 -> gIoU -0.25 / 0.55.
        let spans = Variable(Tensor(shape: [2, 2, 2], data: [0.5, 0.2, 0.3, 0.4, 0.5, 0.2, 0.1, 0.1]))
        let targets = [[SpanTarget(center: 0.4, width: 0.2)], [SpanTarget(center: 0.9, width: 0.1)]]
        let matches: [[(query: Int, target: Int)]] = [[(query: 1, target: 0)], [(query: 0, target: 0)]]
        let (l1, giou) = MomentCriterion.spanLosses(spans: spans, targets: targets, matches: matches)!
        XCTAssertEqual(l1.scalar, (0.1 + 0.2 + 0.4 + 0.1) / 4, accuracy: 1e-6)
        XCTAssertEqual(giou.scalar, ((1 - 0.5) + (1 + 0.25 / 0.55)) / 2, accuracy: 1e-5)
        XCTAssertNil(MomentCriterion.spanLosses(spans: spans, targets: [[], []], matches: [[], []]))
    }

    func testLabelLossWeightsBackgroundAndAveragesOverAllQueries() {
        // Query 0 matched (foreground = class 0), query 1 background with weight 0.1; divided by 2 queries.
        let logits = Variable(Tensor(shape: [1, 2, 2], data: [2, 0, 0, 1]))
        let loss = MomentCriterion.labelLoss(logits: logits, matches: [[(query: 0, target: 0)]], backgroundWeight: 0.1)
        let expected = (log(1 + exp(-2.0)) + 0.1 * log(1 + exp(-1.0))) / 2
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-6)
    }

    func testHingeLossOverSampledPairs() {
        let saliency = Variable(Tensor(shape: [1, 4], data: [0.1, 0.5, -0.2, 0.3]))
        // Pairs (pos 1, neg 2): relu(0.2 - 0.2 - 0.5) = 0; (pos 0, neg 3): relu(0.2 + 0.3 - 0.1) = 0.4.
        let loss = MomentCriterion.hingeLoss(saliency: saliency, positives: [[1, 0]], negatives: [[2, 3]], margin: 0.2)
        XCTAssertEqual(loss.scalar, 0.4 / 2 * 2, accuracy: 1e-6)
    }

    func testRankContrastiveLossWithNegativePairAndPadding() {
        // Sample 0: scores [1, 0], negative pairing [0.5, -1], labels [2, 0]: ranks 1 and 2 both have clip 0
        // as the only positive; logits at tau 0.5 are [2, 0, 1, -2].
        // Sample 1: no positive (counts 0 in the batch mean); its padded clip (9) must not matter.
        let saliency = Variable(Tensor(shape: [2, 2], data: [1, 0, 0.3, 9]))
        let negative = Variable(Tensor(shape: [2, 2], data: [0.5, -1, 0, 0]))
        let labels = Tensor(shape: [2, 2], data: [2, 0, 0, 0])
        let mask = Tensor(shape: [2, 2], data: [1, 1, 1, 0])
        let loss = MomentCriterion.rankContrastiveLoss(saliency: saliency, negativeSaliency: negative, scores: labels,
                                                       videoMask: mask, temperature: 0.5)
        let logP = 2 - log(exp(2.0) + 1 + exp(1.0) + exp(-2.0))
        let expected = -(2 * logP / (1 + 1e-6)) / 2 / 12
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-6)
    }

    func testNegativePairLossIsMaskedSoftplusAveragedOverBatch() {
        let negative = Variable(Tensor(shape: [2, 2], data: [0, 1, 2, -1]))
        let mask = Tensor(shape: [2, 2], data: [1, 1, 1, 0])
        let loss = MomentCriterion.negativePairLoss(negativeSaliency: negative, videoMask: mask)
        // -log(1 - sigmoid(x)) = log(1 + e^x).
        let expected = (log(2.0) + log(1 + exp(1.0)) + log(1 + exp(2.0))) / 2
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5)
    }

    func testTotalIsTheCoefficientWeightedSumOfHandComputedTermsOverBothDecoderLayers() throws {
        // One sample, one query, two decoder layers (auxiliary losses on), four clips; every term worked
        // out below from its definition, none taken from the criterion.
        var config = TinyModel.config(tdem: false)
        config.coefficients = LossCoefficients(span: 10, giou: 2, label: 4, margin: 3, contrastive: 5, negative: 0.5)
        config.auxiliaryLosses = true
        config.saliencyMargin = 0.2
        config.backgroundWeight = 0.1
        config.rankTemperature = 0.5
        let criterion = MomentCriterion(config: config)
        let c = config.coefficients
        func constant(_ shape: [Int], _ data: [Float]) -> Variable { Variable(Tensor(shape: shape, data: data)) }
        let outputs = MomentOutputs(
            layers: [DecoderPrediction(logits: constant([1, 1, 2], [1, 0]), spans: constant([1, 1, 2], [0.5, 0.4])),
                     DecoderPrediction(logits: constant([1, 1, 2], [2, -1]), spans: constant([1, 1, 2], [0.45, 0.3]))],
            saliency: constant([1, 4], [0.5, 1.0, -0.5, 0.2]),
            negativeSaliency: constant([1, 4], [0.1, -0.3, 0.4, 0]))
        let batch = MomentBatch(
            videoFeatures: Tensor(zeros: [1, 4, 6]), videoMask: Tensor(repeating: 1, shape: [1, 4]),
            textFeatures: Tensor(zeros: [1, 3, 5]), textMask: Tensor(repeating: 1, shape: [1, 3]),
            windows: [[SpanTarget(center: 0.4, width: 0.2)]],
            saliency: SaliencyTargets(scores: Tensor(shape: [1, 4], data: [0, 8, 3, 0]), positiveClips: [[1, 3]],
                                      negativeClips: [[2, 0]]),
            durations: [8])
        let (total, terms) = criterion(outputs, batch: batch)

        // Layer 0 (suffix _0): span [0.3, 0.7] vs target [0.3, 0.5]: L1 (0.1 + 0.2) / 2; IoU 0.2 / 0.4 and the
        // hull is the union, so gIoU 0.5; the one query is foreground: -log softmax([1, 0])[0].
        let span0 = 0.15, giou0 = 0.5, label0 = log(1 + exp(-1.0))
        // Layer 1 (final): span [0.3, 0.6]: L1 (0.05 + 0.1) / 2; IoU 0.2 / 0.3, hull = union.
        let span1 = 0.075, giou1 = 1 - 2.0 / 3, label1 = log(1 + exp(-3.0))
        // Hinge over pairs (1, 2) and (3, 0): relu(0.2 - 0.5 - 1.0) = 0, relu(0.2 + 0.5 - 0.2) = 0.5; x 2 / 2 pairs.
        let margin = 0.5
        // Rank-aware contrastive over the 8 columns [saliency, negative] / 0.5: ranks 1-3 have clips 1 and 2
        // as positives, ranks 4-8 clip 1 only; divided by 12.
        let logits = [0.5, 1.0, -0.5, 0.2, 0.1, -0.3, 0.4, 0].map { $0 / 0.5 }
        let logSum = log(logits.map { exp($0) }.reduce(0, +))
        let logP1 = logits[1] - logSum, logP2 = logits[2] - logSum
        let contrastive = -(3 * (logP1 + logP2) / (2 + 1e-6) + 5 * logP1 / (1 + 1e-6)) / 12
        // Negative pair: sum of log(1 + e^x) over the clips.
        let negative = [0.1, -0.3, 0.4, 0].map { log(1 + exp($0)) }.reduce(0, +)

        let expected = Double(c.span) * (span0 + span1) + Double(c.giou) * (giou0 + giou1) + Double(c.label) * (label0 + label1)
            + Double(c.margin) * margin + Double(c.contrastive) * contrastive + Double(c.negative) * negative
        XCTAssertEqual(Double(total.scalar), expected, accuracy: 1e-5 * expected)
        let named: [String: Double] = ["loss_span_0": span0, "loss_giou_0": giou0, "loss_label_0": label0,
                                       "loss_span": span1, "loss_giou": giou1, "loss_label": label1,
                                       "loss_saliency_margin": margin, "loss_saliency_contrastive": contrastive,
                                       "loss_saliency_negative": negative]
        XCTAssertEqual(Set(terms.keys), Set(named.keys).union(["loss_total"]))
        for (name, value) in named { XCTAssertEqual(Double(try XCTUnwrap(terms[name], name)), value, accuracy: 1e-5, name) }
        XCTAssertEqual(terms["loss_total"], total.scalar)
    }
}
