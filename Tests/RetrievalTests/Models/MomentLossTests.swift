import Foundation
import NN
import Retrieval
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

    func testTotalIsTheCoefficientWeightedSumOfTermsOverAllDecoderLayers() {
        var config = TinyModel.config(tdem: false)
        config.coefficients = .paper
        var generator = SeededGenerator(seed: 3)
        let model = MomentDETR(config: config, generator: &generator)
        let batch = TinyModel.batch(seed: 4)
        let outputs = model.forward(batch, context: ForwardContext(isTraining: false))
        let (total, terms) = model.loss(outputs, batch: batch)
        let c = LossCoefficients.paper
        var expected: Float = 0
        for suffix in ["", "_0"] {
            expected += c.span * terms["loss_span" + suffix]! + c.giou * terms["loss_giou" + suffix]!
                + c.label * terms["loss_label" + suffix]!
        }
        expected += c.margin * terms["loss_saliency_margin"]! + c.contrastive * terms["loss_saliency_contrastive"]!
            + c.negative * terms["loss_saliency_negative"]!
        XCTAssertEqual(total.scalar, expected, accuracy: 1e-4 * max(1, abs(expected)))
        XCTAssertEqual(terms["loss_total"]!, total.scalar)
        XCTAssertNil(terms["loss_span_1"], "the final layer has no suffix")
    }
}
