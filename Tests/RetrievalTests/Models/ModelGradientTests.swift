import GradientChecking
import NN
import Retrieval
import XCTest

/// Finite-difference checks of the composite modules built for the models, under the shared checker's
/// tolerances. Feed-forward PReLU slopes are set to 1 so that the checked function has no kink near the
/// inputs (the slope's own gradient is still checked); the TDEM projection's ReLUs are kept: an element
/// whose step crosses one is judged only as precisely as finite differences resolve it.
final class ModelGradientTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Variable {
        var generator = SeededGenerator(seed: seed)
        return Variable(Initialization.uniform(shape: shape, bound: scale, generator: &generator), requiresGrad: true)
    }

    func testAnchorDecoderLayerGradients() {
        for isFirst in [true, false] {
            var generator = SeededGenerator(seed: 31)
            let layer = AnchorDecoderLayer(width: 8, heads: 2, feedForwardWidth: 12, dropout: 0.1, isFirst: isFirst,
                                           generator: &generator)
            layer.feedForward.slope.assign(Tensor(repeating: 1, shape: [1]))
            let target = random([2, 3, 8], seed: 32), memory = random([2, 4, 8], seed: 33)
            let memoryPosition = random([2, 4, 8], seed: 34), queryPosition = random([2, 3, 8], seed: 35)
            let querySine = random([2, 3, 8], seed: 36)
            let mask = KeyPaddingMask(batch: 2, length: 4, isPadding: [false, false, true, true, false, false, false, false])
            let failures = GradientCheck().failures(
                [target, memory, memoryPosition, queryPosition, querySine] + layer.parameters) {
                let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 37))
                return layer(target, memory: memory, memoryPosition: memoryPosition, memoryMask: mask,
                             queryPosition: queryPosition, querySine: querySine, context: context)
            }
            XCTAssertEqual(failures, [], "first layer: \(isFirst)")
        }
    }

    func testAnchorDecoderGradientsThroughAnchorsAndMemory() {
        var generator = SeededGenerator(seed: 41)
        let decoder = AnchorDecoder(width: 8, heads: 2, feedForwardWidth: 12, layerCount: 2, dropout: 0, generator: &generator)
        for layer in decoder.layers { layer.feedForward.slope.assign(Tensor(repeating: 1, shape: [1])) }
        // Give the refinement head a non-zero last layer so the second layer's anchors move.
        let last = decoder.spanRefinement.layers[2]
        last.weight.assign(Initialization.uniform(shape: last.weight.shape, bound: 0.1, generator: &generator))
        let memory = random([1, 5, 8], seed: 42)
        let position = Variable(SinePositionalEncoding(featureCount: 8).encode(validity: Tensor(repeating: 1, shape: [1, 5])))
        var anchorGenerator = SeededGenerator(seed: 43)
        let anchors = Variable(Tensor(shape: [1, 2, 2]) { out in
            for i in 0..<out.count { out[i] = anchorGenerator.nextUniform(in: 0.2, 0.6) }
        }, requiresGrad: true)
        let mask = KeyPaddingMask(batch: 1, length: 5, isPadding: [false, false, false, false, true])
        let failures = GradientCheck().failures([memory, anchors]) {
            let output = decoder(memory: memory, memoryPosition: position, memoryMask: mask, anchors: anchors,
                                 context: ForwardContext(isTraining: false))
            // Layer 2 starts from detached anchors, which finite differences cannot detach: check what
            // the gradient reaches, the first layer's state and the refined (head) anchors.
            return concat([output.hidden[0], output.references[1]], axis: 2)
        }
        XCTAssertEqual(failures, [])
    }

    func testTextToVideoLayerWithDynamicsBranchGradients() {
        for variant in [TDEMVariant.paper, .authorsCode] {
            var generator = SeededGenerator(seed: 51)
            let layer = TextToVideoLayer(width: 8, heads: 2, feedForwardWidth: 12, dropout: 0.1, dynamics: variant,
                                         beta: 0.5, generator: &generator)
            layer.feedForward.slope.assign(Tensor(repeating: 1, shape: [1]))
            let video = random([2, 4, 8], seed: 52), position = random([2, 4, 8], seed: 53)
            let text = random([2, 3, 8], seed: 54), start = random([1, 1, 8], seed: 55)
            let textMask = KeyPaddingMask(batch: 2, length: 3, isPadding: [false, false, false, false, false, true])
            let failures = GradientCheck()
                .failures([video, position, text, start] + layer.parameters) {
                    let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 56))
                    return layer(video: video, position: position, text: text, textMask: textMask, startToken: start,
                                 context: context)
                }
            XCTAssertEqual(failures, [], "\(variant)")
        }
    }

    func testTemporalDifferencesStartFromTheStartToken() {
        let tokens = Variable(Tensor(shape: [1, 3, 2], data: [1, 2, 4, 6, 5, 5]))
        let start = Variable(Tensor(shape: [1, 1, 2], data: [0.5, -1]))
        let differences = TemporalDynamicsBranch.temporalDifferences(tokens, startToken: start)
        XCTAssertEqual(differences.value.data, [0.5, 3, 3, 4, 1, -1])
    }
}
