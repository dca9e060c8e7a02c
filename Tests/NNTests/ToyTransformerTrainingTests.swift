import NN
import XCTest

/// A two-layer post-norm transformer encoder learns to reverse sequences of tokens: position `t`
/// must output the token at position `L - 1 - t`, which only attention with positional encodings
/// can do. Trained with dropout, AdamW and gradient clipping from a fixed seed.
final class ToyTransformerTrainingTests: XCTestCase {
    final class Reverser: Module {
        let embedding: Embedding
        let layers: [TransformerEncoderLayer]
        let head: Linear

        init(vocabulary: Int, width: Int, generator: inout SeededGenerator) {
            embedding = Embedding(count: vocabulary, width: width, generator: &generator)
            layers = (0..<2).map { _ in
                TransformerEncoderLayer(width: width, heads: 4, feedForwardWidth: 2 * width, dropout: 0.1, generator: &generator)
            }
            head = Linear(inFeatures: width, outFeatures: vocabulary, generator: &generator)
        }

        func callAsFunction(_ tokens: [Int], batch: Int, length: Int, position: Variable, context: ForwardContext) -> Variable {
            var h = embedding(tokens, indexShape: [batch, length])
            for layer in layers { h = layer(h, position: position, keyPaddingMask: nil, context: context) }
            return head(h).reshaped([batch * length, -1])
        }

        func namedParameters() -> [(name: String, parameter: Variable)] {
            parameters(of: embedding, prefix: "embedding")
                + layers.enumerated().flatMap { parameters(of: $0.element, prefix: "layers.\($0.offset)") }
                + parameters(of: head, prefix: "head")
        }
    }

    /// Trains for `steps` and returns the loss of every step.
    func train(seed: UInt64, steps: Int) -> (losses: [Float], evaluationLoss: Float) {
        let (vocabulary, width, batch, length) = (8, 32, 16, 6)
        var generator = SeededGenerator(seed: seed)
        let model = Reverser(vocabulary: vocabulary, width: width, generator: &generator)
        let optimizer = AdamW(module: model, learningRate: 3e-3, weightDecay: 1e-4)
        let position = Variable(SinePositionalEncoding(featureCount: width)
            .encode(validity: Tensor(repeating: 1, shape: [1, length])))
        let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: seed &+ 1))
        var data = SeededGenerator(seed: seed &+ 2)
        func sample() -> (tokens: [Int], targets: [Int]) {
            let tokens = (0..<(batch * length)).map { _ in Int(data.next() % UInt64(vocabulary)) }
            let targets = (0..<(batch * length)).map { i in tokens[(i / length) * length + length - 1 - i % length] }
            return (tokens, targets)
        }
        var losses: [Float] = []
        for _ in 0..<steps {
            let (tokens, targets) = sample()
            model.zeroGrad()
            let loss = crossEntropyLoss(model(tokens, batch: batch, length: length, position: position, context: context),
                                        targets: targets)
            loss.backward()
            GradientClipping.clipByGlobalNorm(model.parameters, maxNorm: 1)
            optimizer.update()
            losses.append(loss.scalar)
        }
        let evaluation = ForwardContext(isTraining: false)
        let (tokens, targets) = sample()
        let evaluationLoss = GradientMode.withoutGradients {
            crossEntropyLoss(model(tokens, batch: batch, length: length, position: position, context: evaluation),
                             targets: targets).scalar
        }
        return (losses, evaluationLoss)
    }

    func testReversalTaskTrainsBelowStatedLossAndIsBitReproducible() {
        let first = train(seed: 42, steps: 300)
        let second = train(seed: 42, steps: 300)
        XCTAssertEqual(first.losses, second.losses, "two runs from the same seed must give identical losses")
        XCTAssertEqual(first.evaluationLoss, second.evaluationLoss)
        // Chance level is log(8) = 2.08.
        XCTAssertGreaterThan(first.losses[0], 1.8)
        XCTAssertLessThan(first.evaluationLoss, 0.1, "held-out loss after 300 steps")
        print("toy reversal: first loss \(first.losses[0]), last training loss \(first.losses.last!), held-out \(first.evaluationLoss)")
    }
}
