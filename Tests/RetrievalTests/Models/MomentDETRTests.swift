import Foundation
import NN
import Retrieval
import XCTest

final class MomentDETRTests: XCTestCase {
    /// See `MomentDETR`'s documentation: the reference's 7,585,573 includes an unused 8,704-parameter
    /// text positional embedding (32 x 256 table + LayerNorm); every other parameter is matched.
    func testParameterCountAtPaperConfigurationMatchesReferenceLessItsUnusedTextPositions() {
        var generator = SeededGenerator(seed: 1)
        let qd = MomentDETR(config: .qdDETR(), generator: &generator)
        XCTAssertEqual(qd.parameterCount, 7_576_869)
        XCTAssertEqual(7_585_573 - qd.parameterCount, 32 * 256 + 2 * 256)
        let td = MomentDETR(config: .tdDETR(), generator: &generator)
        XCTAssertEqual(td.parameterCount, 7_576_869 + 2 * 264_192 + 256)
        var code = ModelConfig.tdDETR()
        code.tdemVariant = .authorsCode
        XCTAssertEqual(MomentDETR(config: code, generator: &generator).parameterCount, 8_105_509 + 2 * 131_584)
        let names = qd.namedParameters().map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "parameter names are unique")
    }

    func testTDEMOffIsTheBaselineAndBetaOneInjectsNothing() {
        let batch = TinyModel.batch(seed: 11)
        var g1 = SeededGenerator(seed: 12), g2 = SeededGenerator(seed: 12)
        let baseline = MomentDETR(config: TinyModel.config(tdem: false), generator: &g1)
        var ablation = ModelConfig.ablation(vsdc: true, tdem: false)
        let tiny = TinyModel.config(tdem: false)
        ablation.videoFeatureWidth = tiny.videoFeatureWidth
        ablation.textFeatureWidth = tiny.textFeatureWidth
        ablation.hiddenWidth = tiny.hiddenWidth
        ablation.heads = tiny.heads
        ablation.feedForwardWidth = tiny.feedForwardWidth
        ablation.encoderLayers = tiny.encoderLayers
        ablation.queryCount = tiny.queryCount
        let tdemOff = MomentDETR(config: ablation, generator: &g2)
        let a = baseline.forward(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: 5)))
        let b = tdemOff.forward(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: 5)))
        XCTAssertEqual(a.final.spans.value, b.final.spans.value)
        XCTAssertEqual(a.saliency.value, b.saliency.value)
        XCTAssertEqual(a.negativeSaliency!.value, b.negativeSaliency!.value)

        // TD-DETR with beta = 1 and the baseline's weights (copied by name) gives the baseline's outputs.
        var config = TinyModel.config(tdem: true)
        config.beta = 1
        var g3 = SeededGenerator(seed: 99)
        let td = MomentDETR(config: config, generator: &g3)
        let baselineWeights = Dictionary(uniqueKeysWithValues: baseline.namedParameters().map { ($0.name, $0.parameter) })
        var copied = 0
        for (name, parameter) in td.namedParameters() {
            if let source = baselineWeights[name] { parameter.assign(source.value); copied += 1 }
        }
        XCTAssertEqual(copied, baselineWeights.count, "every baseline parameter exists in TD-DETR under the same name")
        let eval = ForwardContext(isTraining: false)
        let c = baseline.forward(batch, context: eval), d = td.forward(batch, context: eval)
        XCTAssertEqual(c.final.spans.value, d.final.spans.value)
        XCTAssertEqual(c.final.logits.value, d.final.logits.value)
        XCTAssertEqual(c.saliency.value, d.saliency.value)
        // And beta < 1 does change them.
        var mixed = config
        mixed.beta = 0.5
        var g4 = SeededGenerator(seed: 99)
        let tdMixed = MomentDETR(config: mixed, generator: &g4)
        for (target, source) in zip(tdMixed.parameters, td.parameters) { target.assign(source.value) }
        XCTAssertNotEqual(tdMixed.forward(batch, context: eval).final.spans.value, d.final.spans.value)
    }

    func testForwardIsDeterministicGivenTheContextGenerator() {
        var generator = SeededGenerator(seed: 21)
        let model = MomentDETR(config: TinyModel.config(tdem: true), generator: &generator)
        let batch = TinyModel.batch(seed: 22)
        func run(_ seed: UInt64) -> (Tensor, Float) {
            let outputs = model.forward(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: seed)))
            return (outputs.final.spans.value, model.loss(outputs, batch: batch).total.scalar)
        }
        let first = run(1), again = run(1), other = run(2)
        XCTAssertEqual(first.0, again.0)
        XCTAssertEqual(first.1, again.1)
        XCTAssertNotEqual(first.0, other.0, "dropout masks come from the context generator")
    }

    func testOverfittingFourSamplesDrivesSpanLossNearZero() {
        for tdem in [false, true] {
            var config = TinyModel.config(tdem: tdem)
            config.dropout = 0
            config.inputDropout = 0
            config.hiddenWidth = 32
            config.heads = 4
            config.feedForwardWidth = 64
            var generator = SeededGenerator(seed: 61)
            let model = MomentDETR(config: config, generator: &generator)
            let batch = TinyModel.batch(seed: 62, batch: 4)
            let optimizer = AdamW(module: model, learningRate: 2e-3, weightDecay: 1e-4)
            var first: [String: Float] = [:], last: [String: Float] = [:]
            for step in 0..<300 {
                model.zeroGrad()
                let outputs = model.forward(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: UInt64(step))))
                let (total, terms) = model.loss(outputs, batch: batch)
                total.backward()
                GradientClipping.clipByGlobalNorm(model.parameters, maxNorm: 0.1)
                optimizer.update()
                if step == 0 { first = terms }
                last = terms
            }
            XCTAssertLessThan(last["loss_span"]!, 0.02, "tdem \(tdem): span L1 \(first["loss_span"]!) -> \(last["loss_span"]!)")
            XCTAssertLessThan(last["loss_giou"]!, 0.1, "tdem \(tdem)")
            XCTAssertLessThan(last["loss_total"]!, first["loss_total"]! / 4, "tdem \(tdem)")
        }
    }

    func testPredictReturnsWindowsInSecondsSortedByScoreAndSaliencyPerValidClip() {
        var generator = SeededGenerator(seed: 71)
        let model = MomentDETR(config: TinyModel.config(tdem: true), generator: &generator)
        let batch = TinyModel.batch(seed: 72)
        let predictions = model.predict(batch)
        XCTAssertEqual(predictions.count, 3)
        for (b, prediction) in predictions.enumerated() {
            XCTAssertEqual(prediction.windows.count, 4)
            XCTAssertEqual(prediction.saliency.count, batch.validClipCount(b))
            for (a, next) in zip(prediction.windows, prediction.windows.dropFirst()) { XCTAssertGreaterThanOrEqual(a.score, next.score) }
            for window in prediction.windows {
                XCTAssertLessThanOrEqual(window.start, window.end)
                XCTAssertGreaterThanOrEqual(window.start, 0)
                XCTAssertLessThanOrEqual(window.end, batch.durations[b])
            }
        }
    }

    func testSaliencyPairSamplerTakesHardPairFromScoresAndEasyNegativeOutside() {
        var generator = SeededGenerator(seed: 81)
        for _ in 0..<20 {
            let pairs = SaliencyPairSampler.sample(relevantClips: [3, 4, 5], summedScores: [6, 11, 2], clipCount: 8,
                                                   generator: &generator)
            XCTAssertEqual(pairs.positives[0], 4)
            XCTAssertEqual(pairs.negatives[0], 5)
            XCTAssertTrue([3, 4, 5].contains(pairs.positives[1]))
            XCTAssertTrue([0, 1, 2, 6, 7].contains(pairs.negatives[1]))
        }
        let everyClip = SaliencyPairSampler.sample(relevantClips: [0, 1], summedScores: [1, 2], clipCount: 2, generator: &generator)
        XCTAssertEqual(everyClip.positives, [1, 1])
        XCTAssertEqual(everyClip.negatives, [0, 0])
    }
}

final class ModelConfigTests: XCTestCase {
    func testPartialConfigurationKeepsDefaultsAndRoundTrips() throws {
        let json = #"{"tdem": true, "beta": 0.7, "tdemVariant": "authorsCode", "coefficients": {"span": 10, "giou": 1, "label": 4, "margin": 1, "contrastive": 1, "negative": 1}}"#
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        XCTAssertTrue(config.tdem)
        XCTAssertEqual(config.beta, 0.7)
        XCTAssertEqual(config.tdemVariant, .authorsCode)
        XCTAssertEqual(config.coefficients, LossCoefficients.preset(named: "qd-detr"))
        XCTAssertEqual(config.hiddenWidth, 256)
        XCTAssertEqual(config.videoFeatureWidth, 2818)
        let again = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(again, config)
    }

    func testAblationGridIsFourConfigurationsOfOneModel() {
        let grid = [(false, false), (true, false), (false, true), (true, true)].map { ModelConfig.ablation(vsdc: $0.0, tdem: $0.1) }
        XCTAssertEqual(Set(grid.map { "\($0.vsdc)-\($0.tdem)" }).count, 4)
        XCTAssertEqual(grid[3], ModelConfig.tdDETR())
        XCTAssertEqual(grid[0], ModelConfig.qdDETR())
    }
}
