import Foundation
import NN
@testable import Retrieval
import XCTest

/// Each CDNet loss term against a value computed by hand on a tiny case, and the targets they use.
final class CDNetLossTests: XCTestCase {
    private func constant(_ shape: [Int], _ data: [Float]) -> Variable { Variable(Tensor(shape: shape, data: data)) }

    func testPositiveClipsAreThoseWhoseCentreIsInAWindowAndShortWindowsGetTheirCentreClip() {
        // 4 valid clips (centres 0.125, 0.375, 0.625, 0.875) + 1 padding slot.
        let mask = Tensor(shape: [1, 5], data: [1, 1, 1, 1, 0])
        let windows = [[SpanTarget(center: 0.8, width: 0.3), SpanTarget(center: 0.45, width: 0.1)]]
        let targets = DenseMomentTargets(windows: windows, videoMask: mask)
        XCTAssertEqual(targets.positive.data, [0, 1, 0, 1, 0])
        XCTAssertEqual(targets.negative.data, [1, 0, 1, 0, 0])
        XCTAssertEqual(targets.positiveIndices, [1, 3])
        XCTAssertEqual(targets.validIndices, [0, 1, 2, 3])
        // Clip 1 stands for the short window [0.4, 0.5] its centre lies before: left floored at 0.
        XCTAssertEqual(targets.leftOffsets[0], 0, accuracy: 1e-6)
        XCTAssertEqual(targets.rightOffsets[0], 0.125, accuracy: 1e-6)
        XCTAssertEqual(targets.windowStarts[0], 0.4, accuracy: 1e-6)
        XCTAssertEqual(targets.leftOffsets[1], 0.875 - 0.65, accuracy: 1e-6)
        XCTAssertEqual(targets.rightOffsets[1], 0.95 - 0.875, accuracy: 1e-6)
    }

    func testIntraVideoLossIsInfoNCEOfTheAnchorAgainstOutsideClips() {
        // Clip centres 1/6, 1/2, 5/6; the window [0.05, 0.25] holds clip 0 only.
        let targets = DenseMomentTargets(windows: [[SpanTarget(center: 0.15, width: 0.2)]],
                                         videoMask: Tensor(repeating: 1, shape: [1, 3]))
        let video = constant([1, 3, 2], [1, 0, 0, 1, 1, 1]), global = constant([1, 1, 2], [3, 0])
        let loss = CDNetCriterion.intraVideoLoss(video: video, globalQuery: global, anchors: [0], targets: targets, temperature: 0.5)
        // Cosines 1, 0, 1/sqrt(2), divided by 0.5.
        let expected = log(1 + exp(-2.0) + exp(Double(2).squareRoot() - 2))
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5)
    }

    func testTokenLossScoresEachClipAgainstItsOwnGuidedToken() {
        let targets = DenseMomentTargets(windows: [[SpanTarget(center: 0.15, width: 0.2)]],
                                         videoMask: Tensor(repeating: 1, shape: [1, 3]))
        let video = constant([1, 3, 2], [1, 0, 0, 1, 1, 1]), guided = constant([1, 3, 2], [0, 2, 0, 1, 1, 0])
        let loss = CDNetCriterion.tokenLoss(video: video, guidedText: guided, anchors: [0], targets: targets, temperature: 0.5)
        // Cosines 0 (anchor), 1, 1/sqrt(2).
        let expected = log(1 + exp(2.0) + exp(Double(2).squareRoot()))
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5)
    }

    func testInterVideoLossContrastsTheAnchorWithEveryGlobalQuery() {
        let video = constant([2, 3, 2], [1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1])
        let global = constant([2, 1, 2], [1, 0, 0, 2])
        let loss = CDNetCriterion.interVideoLoss(video: video, globalQuery: global, anchors: [0, 2], temperature: 0.5)
        // Sample 0: cos 1 with its own query, 0 with the other; sample 1 ([1, 1]): 1/sqrt(2) with both.
        let expected = (log(1 + exp(-2.0)) + log(2.0)) / 2
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5)
        // A sample without an anchor drops out of the mean.
        let single = CDNetCriterion.interVideoLoss(video: video, globalQuery: global, anchors: [nil, 2], temperature: 0.5)
        XCTAssertEqual(Double(single.scalar), log(2.0), accuracy: 1e-5)
    }

    func testFocalLossCoversValidClipsAndIsNormalisedByPositives() {
        // Clips at 0.25 and 0.75 plus a padding slot; the window [0, 0.5] makes clip 0 positive.
        let targets = DenseMomentTargets(windows: [[SpanTarget(center: 0.25, width: 0.5)]],
                                         videoMask: Tensor(shape: [1, 3], data: [1, 1, 0]))
        let logits = constant([1, 3], [2, -1, 5])
        let loss = CDNetCriterion.focalLoss(logits: logits, targets: targets, alpha: -1, gamma: 2)
        let p0 = 1 / (1 + exp(-2.0)), p1 = 1 / (1 + exp(1.0))
        let expected = pow(1 - p0, 2) * -log(p0) + pow(p1, 2) * -log(1 - p1)
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5)
    }

    func testBoundaryLossesAtThePositiveClip() {
        // Clips at 0.25 and 0.75; the window [0.1, 0.6] holds clip 0: targets left 0.15, right 0.35.
        let targets = DenseMomentTargets(windows: [[SpanTarget(center: 0.35, width: 0.5)]],
                                         videoMask: Tensor(repeating: 1, shape: [1, 2]))
        let offsets = constant([1, 2, 2], [0.25, 0.25, 0.9, 0.9])
        let (smoothL1, giou) = CDNetCriterion.boundaryLosses(offsets: offsets, targets: targets, beta: 1)
        // Errors +-0.1 under beta 1: 0.5 x 0.01 each. Window [0, 0.5] vs [0.1, 0.6]: IoU 0.4 / 0.6, hull = union.
        XCTAssertEqual(smoothL1.scalar, 0.005, accuracy: 1e-6)
        XCTAssertEqual(giou.scalar, 1.0 / 3, accuracy: 1e-5)
    }

    func testTotalIsTheWeightedSumOfTheNamedTerms() {
        var config = CDNetTests.tinyConfig()
        config.weights = CDNetLossWeights(intra: 0.1, inter: 0.2, token: 0.3, focal: 1.5, smoothL1: 2, giou: 0.5)
        var generator = SeededGenerator(seed: 5)
        let model = CDNet(config: config, generator: &generator)
        let (total, terms) = model.trainingLoss(TinyModel.batch(seed: 6), context: ForwardContext(isTraining: true))
        let names = ["loss_intra", "loss_inter", "loss_token", "loss_focal", "loss_smooth_l1", "loss_giou"]
        XCTAssertEqual(Set(terms.keys), Set(names + ["loss_total"]))
        let weights: [Float] = [0.1, 0.2, 0.3, 1.5, 2, 0.5]
        let expected = zip(names, weights).reduce(Float(0)) { $0 + terms[$1.0]! * $1.1 }
        XCTAssertEqual(total.scalar, expected, accuracy: 1e-4)
        XCTAssertEqual(terms["loss_total"]!, total.scalar)
        for name in names { XCTAssertGreaterThan(terms[name]!, 0, name) }
    }
}
