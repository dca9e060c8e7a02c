import Foundation
import NN
import Retrieval
import XCTest

/// The reference's layers as they run (residual dropouts fused into the layer norm, the feed-forward dropout into
/// the PReLU) against the unfused chains they stand for: the same generator draws, the same values and gradients.
final class FusedLayerTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64) -> Variable {
        var generator = SeededGenerator(seed: seed)
        return Variable(Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -1, 1) } },
                        requiresGrad: true)
    }

    /// Runs `fused` and `unfused` on fresh training contexts of one seed, each followed by a backward pass of the
    /// same upstream gradient; checks outputs, the input's gradient and the generators' states agree.
    func compare(_ x: Variable, module: Module, fused: (ForwardContext) -> Variable, unfused: (ForwardContext) -> Variable,
                 file: StaticString = #filePath, line: UInt = #line) {
        let contexts = [ForwardContext(isTraining: true, generator: SeededGenerator(seed: 5)),
                        ForwardContext(isTraining: true, generator: SeededGenerator(seed: 5))]
        var outputs: [Tensor] = [], gradients: [Tensor] = []
        for (index, context) in contexts.enumerated() {
            module.zeroGrad()
            x.zeroGrad()
            let y = index == 0 ? fused(context) : unfused(context)
            y.backward(gradient: random(y.shape, seed: 77).value)
            outputs.append(y.value)
            gradients.append(x.grad!)
        }
        XCTAssertEqual(contexts[0].generator, contexts[1].generator, "the same seeds drawn in the same order", file: file, line: line)
        for (name, pair) in [("output", outputs), ("input gradient", gradients)] {
            let worst = zip(pair[0].data, pair[1].data).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, name, file: file, line: line)
        }
        XCTAssertNotEqual(outputs[0], Tensor(zeros: outputs[0].shape), file: file, line: line)
    }

    func testFeedForwardIsNormOfInputPlusDroppedBranch() {
        var generator = SeededGenerator(seed: 1)
        let block = PReLUFeedForward(width: 16, hiddenWidth: 40, dropout: 0.3, generator: &generator)
        let x = random([3, 7, 16], seed: 2)
        compare(x, module: block, fused: { block(x, context: $0) }, unfused: { context in
            let hidden = dropout(sharedSlopePReLU(block.linear1(x), slope: block.slope), probability: 0.3, generator: &context.generator)
            return block.norm(x + dropout(block.linear2(hidden), probability: 0.3, generator: &context.generator))
        })
    }

    func testEncoderLayerIsNormOfSourcePlusDroppedAttentionThenFeedForward() {
        var generator = SeededGenerator(seed: 3)
        let layer = PReLUEncoderLayer(width: 16, heads: 2, feedForwardWidth: 40, dropout: 0.3, generator: &generator)
        let x = random([3, 7, 16], seed: 4), position = random([3, 7, 16], seed: 6)
        let mask = KeyPaddingMask(batch: 3, length: 7, isPadding: (0..<21).map { $0 % 7 == 6 })
        compare(x, module: layer, fused: { layer(x, position: position, keyPaddingMask: mask, context: $0) }, unfused: { context in
            let attended = layer.selfAttention(query: x + position, key: x + position, value: x, keyPaddingMask: mask, context: context)
            let source = layer.norm(x + dropout(attended, probability: 0.3, generator: &context.generator))
            let block = layer.feedForward
            let hidden = dropout(sharedSlopePReLU(block.linear1(source), slope: block.slope), probability: 0.3,
                                 generator: &context.generator)
            return block.norm(source + dropout(block.linear2(hidden), probability: 0.3, generator: &context.generator))
        })
    }

    func testInputProjectionIsDroppedNormThenLinear() {
        var generator = SeededGenerator(seed: 7)
        let projection = InputProjection(inputWidth: 24, outputWidth: 16, blocks: 2, dropout: 0.3, generator: &generator)
        let x = random([3, 7, 24], seed: 8)
        compare(x, module: projection, fused: { projection(x, context: $0) }, unfused: { context in
            var h = x
            for i in 0..<2 {
                h = projection.linears[i](dropout(projection.norms[i](h), probability: 0.3, generator: &context.generator))
                if i == 0 { h = h.relu() }
            }
            return h
        })
    }
}
