import NN
@testable import Retrieval
import XCTest

/// Which parameters one training loss reaches. A gradient that never arrives is invisible to a loss curve
/// (the parameter just keeps its initial value), so each model's list is asserted exactly: every parameter
/// gets a non-zero gradient except those named here, each for the reason given.
final class ParameterGradientTests: XCTestCase {
    /// The parameters whose gradient after one backward pass is missing or all zero.
    func unreached(_ model: MomentModel, _ batch: MomentBatch) -> [String] {
        model.zeroGrad()
        let (total, _) = model.trainingLoss(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: 5)))
        total.backward()
        return model.namedParameters().filter { named in
            guard let grad = named.parameter.grad else { return true }
            return !grad.data.contains { $0 != 0 && $0.isFinite }
        }.map(\.name)
    }

    /// The first decoder layer's target is all zeros (as in the reference), so the content projections of its
    /// self-attention multiply zeros: their weights never get a gradient (their biases do). The reference
    /// builds and counts them all the same.
    static let deadFirstLayerWeights = ["decoder.layers.0.sa_qcontent_proj.weight", "decoder.layers.0.sa_kcontent_proj.weight",
                                        "decoder.layers.0.sa_v_proj.weight"]
    /// The same three are the only all-zero gradients of the reference's step (the parity fixture's
    /// `params_with_all_zero_grad`); the span refinement's last weight starts random, as there, so its earlier
    /// layers learn from the first step.
    func assertDETRReachesEveryParameter(_ config: ModelConfig, _ label: String) {
        var generator = SeededGenerator(seed: 1)
        let model = MomentDETR(config: config, generator: &generator)
        let batch = TinyModel.batch(seed: 2)
        XCTAssertEqual(unreached(model, batch), Self.deadFirstLayerWeights, label)
        AdamW(module: model, learningRate: 1e-3, weightDecay: 1e-4).update()
        XCTAssertEqual(unreached(model, batch), Self.deadFirstLayerWeights, label)
    }

    func testEveryQDDETRParameterGetsAGradientButTheReferencesDeadOnes() {
        assertDETRReachesEveryParameter(TinyModel.config(tdem: false), "QD-DETR")
    }

    func testEveryTDDETRParameterGetsAGradientIncludingTheDynamicsBranch() {
        for variant in [TDEMVariant.paper, .authorsCode] {
            var generator = SeededGenerator(seed: 1)
            let names = MomentDETR(config: TinyModel.config(tdem: true, variant: variant), generator: &generator)
                .namedParameters().map(\.name)
            XCTAssertTrue(names.contains { $0.contains("dynamics") }, "\(variant): the TDEM branch has parameters: \(names)")
            assertDETRReachesEveryParameter(TinyModel.config(tdem: true, variant: variant), "TD-DETR \(variant)")
        }
    }

    func testEveryCDNetParameterGetsAGradientUnderEachAblationSwitch() {
        // Without global guidance the global query feeds no loss, so its pooling weights learn nothing; without
        // the relevance product the relevance score feeds only the saliency output, not the loss.
        let cases: [(global: Bool, fine: Bool, relevance: Bool, denoising: Bool, unreached: [String])] = [
            (true, true, true, true, []),
            (false, true, false, true, ["qsd.pooling.weight", "qsd.relevance.scale", "qsd.relevance.bias"]),
            (true, false, true, false, []),
            (true, true, false, true, ["qsd.relevance.scale", "qsd.relevance.bias"]),
        ]
        for c in cases {
            var config = CDNetTests.tinyConfig()
            config.globalGuidance = c.global
            config.fineGrainedGuidance = c.fine
            config.relevanceScore = c.relevance
            config.denoising = c.denoising
            var generator = SeededGenerator(seed: 1)
            let model = CDNet(config: config, generator: &generator)
            XCTAssertEqual(unreached(model, TinyModel.batch(seed: 2)), c.unreached,
                           "global \(c.global), fine \(c.fine), relevance \(c.relevance), CDD \(c.denoising)")
        }
    }
}
