import Foundation
import NN
@testable import Retrieval
import XCTest

/// CDNet as a whole: ablation switches, determinism, prediction and training.
final class CDNetTests: XCTestCase {
    /// A small configuration for `TinyModel.batch` (6-d video, 5-d text, 8 clips, 3 tokens).
    static func tinyConfig() -> CDNetConfig {
        var config = CDNetConfig()
        config.videoFeatureWidth = 6
        config.textFeatureWidth = 5
        config.hiddenWidth = 16
        config.heads = 2
        config.localizerLayers = 1
        config.feedForwardWidth = 24
        config.downsamplingFactor = 2
        config.offsetKernel = 3
        return config
    }

    private func model(_ config: CDNetConfig, seed: UInt64 = 1) -> CDNet {
        var generator = SeededGenerator(seed: seed)
        return CDNet(config: config, generator: &generator)
    }

    func testAblationSwitchesRemoveTheirModulesAndLossTerms() {
        let batch = TinyModel.batch(seed: 2)
        let full = model(Self.tinyConfig())
        let fullNames = Set(full.namedParameters().map(\.name))
        XCTAssertTrue(fullNames.contains { $0.hasPrefix("qsd.fine_grained_attn.") })
        XCTAssertTrue(fullNames.contains { $0.hasPrefix("cdd.offset_net.") })

        var noFine = Self.tinyConfig()
        noFine.fineGrainedGuidance = false
        let noFineNames = Set(model(noFine).namedParameters().map(\.name))
        XCTAssertEqual(fullNames.subtracting(noFineNames), Set(fullNames.filter { $0.hasPrefix("qsd.fine_grained_attn.") }))
        XCTAssertTrue(noFineNames.isSubset(of: fullNames))

        var noDenoising = Self.tinyConfig()
        noDenoising.denoising = false
        let noDenoisingModel = model(noDenoising)
        XCTAssertNil(noDenoisingModel.denoising)
        XCTAssertEqual(fullNames.subtracting(noDenoisingModel.namedParameters().map(\.name)),
                       Set(fullNames.filter { $0.hasPrefix("cdd.") }))
        let plain = noDenoisingModel.forward(batch, context: ForwardContext(isTraining: false))
        XCTAssertTrue(plain.denoised === plain.disentanglement.video)

        var noGlobal = Self.tinyConfig()
        noGlobal.globalGuidance = false
        let (_, globalTerms) = model(noGlobal).trainingLoss(batch, context: ForwardContext(isTraining: true))
        XCTAssertNil(globalTerms["loss_intra"])
        XCTAssertNil(globalTerms["loss_inter"])
        XCTAssertNotNil(globalTerms["loss_token"])
        let (_, fineTerms) = model(noFine).trainingLoss(batch, context: ForwardContext(isTraining: true))
        XCTAssertNil(fineTerms["loss_token"])
        XCTAssertNotNil(fineTerms["loss_intra"])

        let baseline = CDNetConfig.ablation(globalGuidance: false, fineGrainedGuidance: false, relevanceScore: false, denoising: false)
        XCTAssertEqual([baseline.globalGuidance, baseline.fineGrainedGuidance, baseline.relevanceScore, baseline.denoising],
                       [false, false, false, false])
    }

    func testRelevanceSwitchMultipliesTheContextTokensByTheScore() {
        let batch = TinyModel.batch(seed: 3)
        var off = Self.tinyConfig()
        off.relevanceScore = false
        // The switch adds no parameters, so both models start from the same weights.
        let with = model(Self.tinyConfig()).forward(batch, context: ForwardContext(isTraining: false))
        let without = model(off).forward(batch, context: ForwardContext(isTraining: false))
        XCTAssertEqual(with.disentanglement.relevance.value, without.disentanglement.relevance.value)
        let (b, length, width) = (batch.batchSize, batch.videoLength, 16)
        var largest: Float = 0
        for row in 0..<b {
            for t in 0..<length {
                let r = with.disentanglement.relevance.value[row, t]
                XCTAssertTrue(r > 0 && r < 1)
                for c in 0..<width {
                    let diff = with.disentanglement.video.value[row, t, c] - r * without.disentanglement.video.value[row, t, c]
                    largest = max(largest, abs(diff))
                }
            }
        }
        XCTAssertLessThan(largest, 1e-5)
        XCTAssertNotEqual(with.confidence.value, without.confidence.value)
    }

    func testTrainingIsDeterministicGivenTheSeeds() {
        let batch = TinyModel.batch(seed: 4)
        func run(contextSeed: UInt64) -> (Float, [Float]) {
            let m = model(Self.tinyConfig(), seed: 9)
            let (total, _) = m.trainingLoss(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: contextSeed)))
            total.backward()
            return (total.scalar, m.parameters.flatMap { $0.grad?.data ?? [] })
        }
        let (a, gradsA) = run(contextSeed: 7), (b, gradsB) = run(contextSeed: 7), (c, _) = run(contextSeed: 8)
        XCTAssertEqual(a, b)
        XCTAssertTrue(gradsA == gradsB, "gradients differ between identical runs")
        XCTAssertNotEqual(a, c, "dropout, drop path and anchors follow the context generator")
        XCTAssertEqual(model(Self.tinyConfig(), seed: 9).parameters.map(\.value), model(Self.tinyConfig(), seed: 9).parameters.map(\.value))
    }

    func testPredictRanksSuppressesAndBoundsWindows() {
        var config = Self.tinyConfig()
        config.maxMoments = 3
        let m = model(config)
        let batch = TinyModel.batch(seed: 5, batch: 3)
        let retrievals = m.predict(batch)
        XCTAssertEqual(retrievals.count, 3)
        for (row, retrieval) in retrievals.enumerated() {
            XCTAssertEqual(retrieval.saliency.count, batch.validClipCount(row))
            XCTAssertFalse(retrieval.windows.isEmpty)
            XCTAssertLessThanOrEqual(retrieval.windows.count, 3)
            XCTAssertEqual(retrieval.windows.map(\.score), retrieval.windows.map(\.score).sorted(by: >))
            for w in retrieval.windows {
                XCTAssertTrue(w.start >= 0 && w.start < w.end && w.end <= batch.durations[row] + 1e-4, "\(w)")
                XCTAssertTrue(w.score > 0 && w.score < 1)
            }
            for i in retrieval.windows.indices {
                for j in retrieval.windows.indices where j > i {
                    let a = TimeWindow(start: Double(retrieval.windows[i].start), end: Double(retrieval.windows[i].end))
                    let b = TimeWindow(start: Double(retrieval.windows[j].start), end: Double(retrieval.windows[j].end))
                    XCTAssertLessThanOrEqual(a.intersectionOverUnion(b), 0.7 + 1e-9)
                }
            }
        }
        // The same outputs decoded by hand: the top window is the highest-confidence clip's.
        let outputs = GradientMode.withoutGradients { m.forward(batch, context: ForwardContext(isTraining: false)) }
        let clips = batch.validClipCount(0)
        let best = (0..<clips).max { outputs.confidence.value[0, $0] < outputs.confidence.value[0, $1] }!
        let center = (Float(best) + 0.5) / Float(clips)
        let start = max(center - outputs.offsets.value[0, best, 0], 0) * batch.durations[0]
        XCTAssertEqual(retrievals[0].windows[0].start, start, accuracy: 1e-4)
        XCTAssertEqual(retrievals[0].saliency, (0..<clips).map { outputs.disentanglement.relevance.value[0, $0] })
    }

    func testDecodingSuppressesWindowsOverlappingAHigherRankedOneBeyondTheNMSThreshold() {
        // One sample of 4 clips (centres 1/8, 3/8, 5/8, 7/8) over 8 s. Proposals by descending confidence:
        // clip 0 [0, 4] s, clip 1 [0, 4] s (IoU 1 with clip 0), clip 2 [4, 6] s, clip 3 [4, 8] s (IoU 0.5 with clip 2).
        func constant(_ shape: [Int], _ data: [Float]) -> Variable { Variable(Tensor(shape: shape, data: data)) }
        let zeros = constant([1, 4, 2], [Float](repeating: 0, count: 8))
        let outputs = CDNetOutputs(
            video: zeros,
            disentanglement: DisentanglementOutputs(globalQuery: constant([1, 1, 2], [0, 0]), guidedText: nil,
                                                    relevance: constant([1, 4], [0.1, 0.2, 0.3, 0.4]), video: zeros),
            denoised: zeros, confidence: constant([1, 4], [2, 1, 0, -1]),
            offsets: constant([1, 4, 2], [0.125, 0.375, 0.375, 0.125, 0.125, 0.125, 0.375, 0.125]))
        let batch = MomentBatch(videoFeatures: Tensor(zeros: [1, 4, 6]), videoMask: Tensor(repeating: 1, shape: [1, 4]),
                                textFeatures: Tensor(zeros: [1, 3, 5]), textMask: Tensor(repeating: 1, shape: [1, 3]),
                                windows: [[]], saliency: nil, durations: [8])
        func windows(threshold: Float) -> [[Float]] {
            var config = Self.tinyConfig()
            config.nmsThreshold = threshold
            return model(config).retrievals(from: outputs, batch: batch)[0].windows.map { [$0.start, $0.end] }
        }
        XCTAssertEqual(windows(threshold: 0.7), [[0, 4], [4, 6], [4, 8]], "the duplicate of the top window goes")
        XCTAssertEqual(windows(threshold: 0.5), [[0, 4], [4, 6], [4, 8]], "an IoU equal to the threshold is kept")
        XCTAssertEqual(windows(threshold: 0.4), [[0, 4], [4, 6]])
        XCTAssertEqual(windows(threshold: 1), [[0, 4], [0, 4], [4, 6], [4, 8]], "no IoU exceeds 1")
        let scores = model(Self.tinyConfig()).retrievals(from: outputs, batch: batch)[0].windows.map(\.score)
        XCTAssertEqual(scores, ([2, 0, -1] as [Float]).map { 1 / (1 + Foundation.exp(-$0)) })
    }

    func testOverfittingFourSamplesDrivesTheLossDown() {
        var config = Self.tinyConfig()
        config.hiddenWidth = 32
        config.heads = 4
        config.feedForwardWidth = 64
        config.dropout = 0
        config.inputDropout = 0
        config.dropPath = 0
        let m = model(config, seed: 61)
        let batch = TinyModel.batch(seed: 62, batch: 4)
        let optimizer = AdamW(module: m, learningRate: 3e-3, weightDecay: 1e-4)
        var first: [String: Float] = [:], last: [String: Float] = [:]
        for step in 0..<150 {
            m.zeroGrad()
            let (total, terms) = m.trainingLoss(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: UInt64(step))))
            total.backward()
            GradientClipping.clipByGlobalNorm(m.parameters, maxNorm: 1)
            optimizer.update()
            if step == 0 { first = terms }
            last = terms
        }
        XCTAssertLessThan(last["loss_total"]!, first["loss_total"]! / 10, "\(first) -> \(last)")
        XCTAssertLessThan(last["loss_giou"]!, 0.1, "\(last)")
        XCTAssertLessThan(last["loss_focal"]!, 0.1, "\(last)")
        // Trained to the batch, the top window of each sample overlaps its first ground-truth window.
        for (row, retrieval) in m.predict(batch).enumerated() {
            let target = batch.windows[row][0], duration = Double(batch.durations[row])
            let truth = TimeWindow(start: Double(target.center - target.width / 2) * duration,
                                   end: Double(target.center + target.width / 2) * duration)
            let top = TimeWindow(start: Double(retrieval.windows[0].start), end: Double(retrieval.windows[0].end))
            XCTAssertGreaterThan(top.intersectionOverUnion(truth), 0.5, "sample \(row)")
        }
    }

    func testPartialConfigurationKeepsDefaultsAndRoundTrips() throws {
        let partial = try JSONDecoder().decode(CDNetConfig.self, from: Data(#"{"hiddenWidth": 64, "denoising": false}"#.utf8))
        var expected = CDNetConfig()
        expected.hiddenWidth = 64
        expected.denoising = false
        XCTAssertEqual(partial, expected)
        XCTAssertEqual(CDNetConfig().downsamplingFactor, 4)
        XCTAssertEqual(CDNetConfig().weights, CDNetLossWeights(intra: 0.1, inter: 0.1, token: 0.1, focal: 1, smoothL1: 1, giou: 1))
        let roundTrip = try JSONDecoder().decode(CDNetConfig.self, from: JSONEncoder().encode(Self.tinyConfig()))
        XCTAssertEqual(roundTrip, Self.tinyConfig())
    }
}
