import GradientChecking
import NN
@testable import Retrieval
import XCTest

/// Finite-difference checks of CDNet's composite modules and loss terms (the ops they are built from have
/// their own checks in the NN tests).
final class CDNetGradientTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Variable {
        var generator = SeededGenerator(seed: seed)
        return Variable(Initialization.uniform(shape: shape, bound: scale, generator: &generator), requiresGrad: true)
    }

    private let videoMask = Tensor(shape: [2, 6], data: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    private let textMask = Tensor(shape: [2, 3], data: [1, 1, 1, 1, 1, 0])

    private func flattened(_ parts: [Variable]) -> Variable {
        concat(parts.map { $0.reshaped([1, $0.count]) }, axis: 1)
    }

    func testDisentanglementGradientsReachVideoTextAndEveryParameter() {
        for (fineGrained, multiplies) in [(true, true), (false, false)] {
            var generator = SeededGenerator(seed: 11)
            let module = QuerySemanticDisentanglement(width: 8, heads: 2, dropout: 0.1, dropPath: 0.3, fineGrained: fineGrained,
                                                      multipliesRelevance: multiplies, relevanceInitialScale: 2,
                                                      generator: &generator)
            let video = random([2, 6, 8], seed: 12), text = random([2, 3, 8], seed: 13)
            let failures = GradientCheck()
                .failures([video, text] + module.parameters) {
                    let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 14))
                    let out = module(video: video, text: text, videoMask: videoMask, textMask: textMask, context: context)
                    return flattened([out.globalQuery, out.relevance, out.video] + (out.guidedText.map { [$0] } ?? []))
                }
            XCTAssertEqual(failures, [], "fine-grained \(fineGrained), relevance product \(multiplies)")
        }
    }

    func testDenoisingGradientsReachFeaturesOffsetsAndParameters() {
        for groups in [1, 2] {
            var generator = SeededGenerator(seed: 21)
            let module = ContextDenoising(width: 8, heads: 2, downsampling: 2, offsetKernel: 3, offsetGroups: groups,
                                          offsetRange: 1.5, dropout: 0.1, dropPath: 0.3, generator: &generator)
            // Larger offset weights so that the sampling points move well off the grid.
            module.offsetPointWeight.assign(Initialization.uniform(shape: module.offsetPointWeight.shape, bound: 2,
                                                                   generator: &generator))
            let x = random([2, 6, 8], seed: 22)
            // The check must cover the position path: some points sit strictly between clips, off the grid.
            let positions = GradientMode.withoutGradients {
                module.samplingPositions(rawOffsets: module.rawOffsets(module.queryProjection(x), videoMask: videoMask),
                                         videoMask: videoMask)
            }
            XCTAssertTrue(positions.value.data.contains { abs($0 - $0.rounded()) > 0.1 }, "\(positions.value.data)")
            let failures = GradientCheck()
                .failures([x] + module.parameters) {
                    module(x, videoMask: videoMask, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: 23)))
                }
            XCTAssertEqual(failures, [], "groups \(groups)")
        }
    }

    func testSamplingPositionsFollowTheOffsetNetwork() {
        var generator = SeededGenerator(seed: 31)
        let module = ContextDenoising(width: 8, heads: 2, downsampling: 2, offsetKernel: 3, offsetGroups: 2,
                                      offsetRange: 1.5, dropout: 0, dropPath: 0, generator: &generator)
        let query = random([2, 6, 8], seed: 32)
        let offsetNetwork = [module.offsetConvWeight, module.offsetConvBias, module.offsetPointWeight]
        let failures = GradientCheck().failures([query] + offsetNetwork) {
            module.rawOffsets(query, videoMask: videoMask)
        }
        XCTAssertEqual(failures, [])
    }

    func testConvolutionalHeadGradients() {
        var generator = SeededGenerator(seed: 41)
        let head = ConvolutionalHead(width: 6, outputWidth: 2, kernel: 3, generator: &generator)
        let x = random([2, 6, 6], seed: 42)
        let failures = GradientCheck().failures([x] + head.parameters) { head(x, videoMask: videoMask) }
        XCTAssertEqual(failures, [])
    }

    func testLossTermGradients() {
        let windows = [[SpanTarget(center: 0.4, width: 0.4)], [SpanTarget(center: 0.3, width: 0.35)]]
        let targets = DenseMomentTargets(windows: windows, videoMask: videoMask)
        let anchors: [Int?] = [2, 1]
        let video = random([2, 6, 8], seed: 51), global = random([2, 1, 8], seed: 52), guided = random([2, 6, 8], seed: 53)
        let logits = random([2, 6], seed: 54, scale: 2)
        var offsetGenerator = SeededGenerator(seed: 55)
        let offsets = Variable(Tensor(shape: [2, 6, 2]) { out in
            for i in 0..<out.count { out[i] = offsetGenerator.nextUniform(in: 0.05, 0.5) }
        }, requiresGrad: true)
        let check = GradientCheck()
        XCTAssertEqual(check.failures([video, global]) {
            CDNetCriterion.intraVideoLoss(video: video, globalQuery: global, anchors: anchors, targets: targets, temperature: 0.5)
        }, [])
        XCTAssertEqual(check.failures([video, global]) {
            CDNetCriterion.interVideoLoss(video: video, globalQuery: global, anchors: anchors, temperature: 0.5)
        }, [])
        XCTAssertEqual(check.failures([video, guided]) {
            CDNetCriterion.tokenLoss(video: video, guidedText: guided, anchors: anchors, targets: targets, temperature: 0.5)
        }, [])
        XCTAssertEqual(check.failures([logits]) {
            CDNetCriterion.focalLoss(logits: logits, targets: targets, alpha: 0.25, gamma: 2)
        }, [])
        XCTAssertEqual(check.failures([offsets]) {
            let (smoothL1, giou) = CDNetCriterion.boundaryLosses(offsets: offsets, targets: targets, beta: 0.1)
            return concat([smoothL1.reshaped([1]), giou.reshaped([1])], axis: 0)
        }, [])
    }

    func testWholeModelLossGradientReachesTheDenoisingAndRelevanceParameters() {
        var config = CDNetTests.tinyConfig()
        config.dropout = 0
        config.inputDropout = 0
        config.dropPath = 0
        var generator = SeededGenerator(seed: 61)
        let model = CDNet(config: config, generator: &generator)
        let batch = TinyModel.batch(seed: 62, batch: 2)
        let checked = [model.disentanglement.relevanceScale, model.disentanglement.relevanceBias,
                       model.boundaryHead.biases[2], model.confidenceHead.biases[2]] + model.denoising!.parameters
        let failures = GradientCheck().failures(checked) {
            model.trainingLoss(batch, context: ForwardContext(isTraining: true, generator: SeededGenerator(seed: 63))).total
        }
        XCTAssertEqual(failures, [])
    }
}
