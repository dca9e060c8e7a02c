import NN
import XCTest

/// Finite-difference checks of every layer with respect to its inputs and all its parameters, under the
/// shared checker's tolerances. Feed-forward blocks use GELU here because a ReLU kink near a hidden unit
/// leaves that element unresolvable by finite differences (ReLU is checked on its own elsewhere).
final class LayerGradientTests: XCTestCase {
    let checker = GradientChecker()

    private func allParameters(_ module: Module) -> [Variable] { module.parameters }

    func testLinearLayerNormAndMLPGradients() {
        var generator = SeededGenerator(seed: 1)
        let layer = Linear(inFeatures: 5, outFeatures: 3, generator: &generator)
        let norm = LayerNorm(width: 3)
        let mlp = MLP(inputWidth: 3, hiddenWidth: 6, outputWidth: 2, layerCount: 3, generator: &generator)
        let x = randomVariable([2, 1, 5], seed: 2)
        checker.check([x] + layer.parameters + norm.parameters) { norm(layer(x)) }
        let y = randomVariable([4, 3], seed: 3, awayFromZero: 0.05)
        // The MLP's ReLUs see sums of weights and inputs: an element whose step crosses a kink is judged
        // only as precisely as finite differences resolve it (see GradientCheck).
        checker.check([y] + mlp.parameters) { mlp(y) }
    }

    func testMultiheadAttentionGradientsSelfAndCrossWithMask() {
        var generator = SeededGenerator(seed: 4)
        let attention = MultiheadAttention(width: 8, heads: 2, dropout: 0.2, generator: &generator)
        let query = randomVariable([2, 3, 8], seed: 5)
        let memory = randomVariable([2, 5, 8], seed: 6)
        let mask = KeyPaddingMask(batch: 2, length: 5, isPadding: [false, false, false, true, true,
                                                                   false, false, false, false, false])
        checker.check([query, memory] + attention.parameters) {
            let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 8))
            return attention(query: query, key: memory, value: memory, keyPaddingMask: mask, context: context)
        }
        checker.check([query] + attention.parameters) {
            attention(query: query, key: query, value: query, context: ForwardContext(isTraining: false))
        }
    }

    func testEncoderLayerGradientsWithPositionsMaskAndDropout() {
        var generator = SeededGenerator(seed: 9)
        let layer = TransformerEncoderLayer(width: 8, heads: 2, feedForwardWidth: 12, dropout: 0.1,
                                            activation: .gelu, generator: &generator)
        let source = randomVariable([2, 5, 8], seed: 10)
        let validity = Tensor(shape: [2, 5], data: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
        let position = Variable(SinePositionalEncoding(featureCount: 8).encode(validity: validity))
        let mask = KeyPaddingMask(validity: validity)
        checker.check([source] + layer.parameters) {
            let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 11))
            return layer(source, position: position, keyPaddingMask: mask, context: context)
        }
    }

    func testDecoderLayerGradientsWithQueryPositionsAndMemoryMask() {
        var generator = SeededGenerator(seed: 12)
        let layer = TransformerDecoderLayer(width: 8, heads: 2, feedForwardWidth: 12, dropout: 0.1,
                                            activation: .gelu, generator: &generator)
        let queries = Embedding(count: 3, width: 8, generator: &generator)
        let target = randomVariable([2, 3, 8], seed: 13)
        let memory = randomVariable([2, 4, 8], seed: 14)
        let validity = Tensor(shape: [2, 4], data: [1, 1, 0, 0, 1, 1, 1, 1])
        let position = Variable(SinePositionalEncoding(featureCount: 8).encode(validity: validity))
        checker.check([target, memory] + layer.parameters + queries.parameters) {
            let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 15))
            let queryPosition = queries.table.reshaped([1, 3, 8])
            return layer(target, memory: memory, memoryKeyPaddingMask: KeyPaddingMask(validity: validity),
                         position: position, queryPosition: queryPosition, context: context)
        }
    }

    func testNamedParametersAreStableAndDotted() {
        var generator = SeededGenerator(seed: 16)
        let layer = TransformerDecoderLayer(width: 8, heads: 2, feedForwardWidth: 12, generator: &generator)
        let names = layer.namedParameters().map(\.name)
        XCTAssertEqual(names.first, "self_attn.q_proj.weight")
        XCTAssertTrue(names.contains("cross_attn.out_proj.bias"))
        XCTAssertEqual(names.last, "norm3.bias")
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertEqual(layer.parameterCount, 2 * 4 * (64 + 8) + (8 * 12 + 12) + (12 * 8 + 8) + 3 * 16)
    }

    func testSinePositionalEncodingMatchesDETRFormula() {
        let encoding = SinePositionalEncoding(featureCount: 4).encode(validity: Tensor(shape: [1, 2], data: [1, 1]))
        // Position of clip 1 (0-based) = 2 / 2 * 2 pi; features: sin(p), cos(p), sin(p / 100), cos(p / 100).
        let p = Float(2.0 / (2.0 + 1e-6) * 2 * Double.pi)
        XCTAssertEqual(encoding[0, 1, 0], sin(p), accuracy: 1e-5)
        XCTAssertEqual(encoding[0, 1, 1], cos(p), accuracy: 1e-5)
        XCTAssertEqual(encoding[0, 1, 2], sin(p / 100), accuracy: 1e-5)
        XCTAssertEqual(encoding[0, 1, 3], cos(p / 100), accuracy: 1e-5)
    }

    /// A batch's samples with the same validity share their encoding, copied from the first; every sample's rows
    /// must be exactly the ones it gets encoded alone, whether its pattern came before or not.
    func testSinePositionalEncodingOfABatchIsEachSampleEncodedAlone() {
        let rows: [[Float]] = [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
        let encoder = SinePositionalEncoding(featureCount: 6)
        let batch = encoder.encode(validity: Tensor(shape: [rows.count, 4], data: rows.flatMap { $0 }))
        for (b, row) in rows.enumerated() {
            let alone = encoder.encode(validity: Tensor(shape: [1, 4], data: row))
            for t in 0..<4 {
                for i in 0..<6 {
                    XCTAssertEqual(batch[b, t, i].bitPattern, alone[0, t, i].bitPattern, "sample \(b), clip \(t), feature \(i)")
                }
            }
        }
        XCTAssertNotEqual(batch[0, 2, 0], batch[1, 2, 0], "different validity, different positions")
    }
}
