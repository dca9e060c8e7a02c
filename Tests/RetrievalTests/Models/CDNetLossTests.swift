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

    func testTotalIsTheWeightedSumOfHandComputedTerms() throws {
        // Two samples of three clips (centres 1/6, 1/2, 5/6), one positive clip each, so the contrastive
        // anchors are fixed; every term worked out below from its definition, none taken from the criterion.
        var config = CDNetTests.tinyConfig()
        config.weights = CDNetLossWeights(intra: 0.1, inter: 0.2, token: 0.3, focal: 1.5, smoothL1: 2, giou: 0.5)
        config.contrastiveTemperature = 0.5
        config.focalGamma = 2
        config.focalAlpha = -1
        config.smoothL1Beta = 0.1
        let video = constant([2, 3, 2], [1, 0, 0, 1, 1, 1, 2, 1, 0, 1, -1, 1])
        let global = constant([2, 1, 2], [1, 1, 0, 2])
        let guided = constant([2, 3, 2], [0, 1, 1, 1, 1, 0, 1, 0, 1, 2, 0, 1])
        let confidence = constant([2, 3], [1.5, -0.5, 0.2, -1, 2, 0.3])
        let offsets = constant([2, 3, 2], [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.2, 0.2, 0.05, 0.2, 0.3, 0.1])
        let outputs = CDNetOutputs(
            video: video,
            disentanglement: DisentanglementOutputs(globalQuery: global, guidedText: guided, relevance: constant([2, 3], [0, 0, 0, 0, 0, 0]),
                                                    video: video),
            denoised: video, confidence: confidence, offsets: offsets)
        // Sample 0: window [0.05, 0.25] holds clip 0; sample 1: window [0.4, 0.6] holds clip 1.
        let batch = MomentBatch(videoFeatures: Tensor(zeros: [2, 3, 6]), videoMask: Tensor(repeating: 1, shape: [2, 3]),
                                textFeatures: Tensor(zeros: [2, 3, 5]), textMask: Tensor(repeating: 1, shape: [2, 3]),
                                windows: [[SpanTarget(center: 0.15, width: 0.2)], [SpanTarget(center: 0.5, width: 0.2)]],
                                saliency: nil, durations: [6, 6])
        var generator = SeededGenerator(seed: 1)
        let (total, terms) = CDNetCriterion(config: config)(outputs, batch: batch, generator: &generator)

        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).map { $0 * $1 }.reduce(0, +) / (sqrt(a.map { $0 * $0 }.reduce(0, +)) * sqrt(b.map { $0 * $0 }.reduce(0, +)))
        }
        func infoNCE(_ scores: [Double], positive: Int) -> Double { -(scores[positive] - log(scores.map { exp($0) }.reduce(0, +))) }
        let v: [[[Double]]] = [[[1, 0], [0, 1], [1, 1]], [[2, 1], [0, 1], [-1, 1]]]
        let g: [[Double]] = [[1, 1], [0, 2]]
        let t: [[[Double]]] = [[[0, 1], [1, 1], [1, 0]], [[1, 0], [1, 2], [0, 1]]]
        let anchors = [0, 1], tau = 0.5
        // Intra: the anchor against the video's other (negative) clips, scored by cosine to g.
        let intra = (0..<2).map { b in infoNCE((0..<3).map { cosine(v[b][$0], g[b]) / tau }, positive: anchors[b]) }.reduce(0, +) / 2
        // Inter: the anchor against every sample's g.
        let inter = (0..<2).map { b in infoNCE((0..<2).map { cosine(v[b][anchors[b]], g[$0]) / tau }, positive: b) }.reduce(0, +) / 2
        // Token: each clip against its own guided token.
        let token = (0..<2).map { b in infoNCE((0..<3).map { cosine(v[b][$0], t[b][$0]) / tau }, positive: anchors[b]) }.reduce(0, +) / 2
        // Focal (gamma 2, no alpha) over the six clips, divided by the two positives.
        let logits: [[Double]] = [[1.5, -0.5, 0.2], [-1, 2, 0.3]]
        var focal = 0.0
        for b in 0..<2 {
            for c in 0..<3 {
                let p = 1 / (1 + exp(-logits[b][c]))
                focal += c == anchors[b] ? pow(1 - p, 2) * -log(p) : pow(p, 2) * -log(1 - p)
            }
        }
        focal /= 2
        // Boundaries at the positive clips: sample 0 clip 0 (centre 1/6) targets (1/6 - 0.05, 0.25 - 1/6),
        // predicted (0.1, 0.1); sample 1 clip 1 (centre 1/2) targets (0.1, 0.1), predicted (0.05, 0.2).
        func smoothL1(_ x: Double) -> Double { abs(x) < 0.1 ? 0.5 * x * x / 0.1 : abs(x) - 0.05 }
        let targets: [(Double, Double)] = [(1.0 / 6 - 0.05, 0.25 - 1.0 / 6), (0.1, 0.1)]
        let predicted: [(Double, Double)] = [(0.1, 0.1), (0.05, 0.2)]
        let centres = [1.0 / 6, 0.5]
        let windows: [(Double, Double)] = [(0.05, 0.25), (0.4, 0.6)]
        var smooth = 0.0, giou = 0.0
        for i in 0..<2 {
            smooth += smoothL1(predicted[i].0 - targets[i].0) + smoothL1(predicted[i].1 - targets[i].1)
            let (s, e) = (centres[i] - predicted[i].0, centres[i] + predicted[i].1)
            let intersection = max(0, min(e, windows[i].1) - max(s, windows[i].0))
            let union = (e - s) + (windows[i].1 - windows[i].0) - intersection
            let hull = max(e, windows[i].1) - min(s, windows[i].0)
            giou += 1 - (intersection / union - (hull - union) / hull)
        }
        smooth /= 4
        giou /= 2

        let named: [String: Double] = ["loss_intra": intra, "loss_inter": inter, "loss_token": token, "loss_focal": focal,
                                       "loss_smooth_l1": smooth, "loss_giou": giou]
        XCTAssertEqual(Set(terms.keys), Set(named.keys).union(["loss_total"]))
        for (name, value) in named { XCTAssertEqual(Double(try XCTUnwrap(terms[name], name)), value, accuracy: 1e-5, name) }
        let expected = 0.1 * intra + 0.2 * inter + 0.3 * token + 1.5 * focal + 2 * smooth + 0.5 * giou
        XCTAssertEqual(Double(total.scalar), expected, accuracy: 1e-5 * expected)
        XCTAssertEqual(terms["loss_total"], total.scalar)
    }
}
