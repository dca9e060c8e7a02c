import Foundation
import Tensor
import XCTest

/// Dropout on a slice of a whole batch (`BatchRows`): every kernel that applies a mask gives each row of the slice
/// the whole batch's mask of that row's sample, so data-parallel ranks drop what one process would.
final class SlicedDropoutTests: XCTestCase {
    let whole = 5
    let p: Float = 0.3
    let seed: UInt64 = 91

    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -1, 1) } }
    }

    /// The rows `rows` of `x` (leading axis), in order.
    func rows(_ x: Tensor, _ rows: [Int]) -> Tensor {
        ShapeKernels.concat(rows.map { ShapeKernels.slice(x, axis: 0, range: $0..<($0 + 1)) }, axis: 0)
    }

    /// Slices a rank may compute: a middle run, the last rows, and a slice carrying one extra row that wraps to
    /// sample 0 (the next sample's text of the negative pairing).
    var slices: [[Int]] { [[1, 2], [3, 4], [4, 0], [0, 1, 2, 3, 4]] }

    func testAppliedMaskOfASliceIsTheWholeBatchsMaskOfItsRows() {
        let x = random([whole, 3, 7], seed: 1)
        let full = DropoutMask.apply(x, probability: p, seed: seed)
        for slice in slices {
            let part = DropoutMask.apply(rows(x, slice), probability: p, seed: seed,
                                         rows: BatchRows(first: slice[0], whole: whole))
            XCTAssertEqual(part, rows(full, slice), "rows \(slice)")
        }
        // Without the rows a slice would take the first rows' masks: the test can tell the two apart.
        XCTAssertNotEqual(DropoutMask.apply(rows(x, [3, 4]), probability: p, seed: seed), rows(full, [3, 4]))
    }

    func testBiasActivationDropoutOfASliceIsTheWholeBatchsRows() {
        let x = random([whole, 4, 9], seed: 2), bias = random([9], seed: 3)
        var full = x
        _ = BiasActivationDropout.forward(&full, bias: bias, activation: .gelu, dropout: p, seed: seed)
        for slice in slices {
            var part = rows(x, slice)
            _ = BiasActivationDropout.forward(&part, bias: bias, activation: .gelu, dropout: p, seed: seed,
                                                      rows: BatchRows(first: slice[0], whole: whole))
            XCTAssertEqual(part, rows(full, slice), "rows \(slice)")
            // Backward regenerates the slice's mask: through the identity activation a gradient of ones is the mask.
            var identity = rows(x, slice)
            let kept = BiasActivationDropout.forward(&identity, bias: nil, activation: .identity, dropout: p, seed: seed,
                                                     rows: BatchRows(first: slice[0], whole: whole))
            let ones = Tensor(shape: identity.shape) { out in for i in 0..<out.count { out[i] = 1 } }
            let (gradient, _) = BiasActivationDropout.backward(outputGradient: ones, output: identity, saved: kept,
                                                               biasGradient: false)
            XCTAssertEqual(gradient, rows(DropoutMask.make(shape: x.shape, probability: p, seed: seed), slice), "rows \(slice)")
        }
    }

    func testResidualLayerNormOfASliceIsTheWholeBatchsRows() {
        let x = random([whole, 6, 8], seed: 4), sublayer = random([whole, 6, 8], seed: 5)
        let gamma = random([8], seed: 6), beta = random([8], seed: 7)
        let (full, _) = LayerNormKernel.residualForward(x, sublayer: sublayer, dropout: p, seed: seed, gamma: gamma,
                                                        beta: beta, epsilon: 1e-5)
        for slice in slices {
            let (part, _) = LayerNormKernel.residualForward(rows(x, slice), sublayer: rows(sublayer, slice), dropout: p, seed: seed,
                                                            rows: BatchRows(first: slice[0], whole: whole), gamma: gamma,
                                                            beta: beta, epsilon: 1e-5)
            XCTAssertEqual(part, rows(full, slice), "rows \(slice)")
        }
    }

    func testAttentionDropoutOfASliceIsTheWholeBatchsSamples() {
        let (q, k, v) = (random([whole, 3, 8], seed: 8), random([whole, 5, 8], seed: 9), random([whole, 5, 8], seed: 10))
        let full = AttentionKernel.forward(query: q, key: k, value: v, heads: 2, keyIsPadding: nil, dropout: p, dropoutSeed: seed)
        for slice in slices {
            let part = AttentionKernel.forward(query: rows(q, slice), key: rows(k, slice), value: rows(v, slice), heads: 2,
                                               keyIsPadding: nil, dropout: p, dropoutSeed: seed,
                                               dropoutRows: BatchRows(first: slice[0], whole: whole))
            XCTAssertEqual(part.output, rows(full.output, slice), "rows \(slice)")
            XCTAssertEqual(part.saved.dropoutMask, full.saved.dropoutMask.map { rows($0, slice) }, "rows \(slice)")
        }
    }

    /// A norm whose input is data (no gradient) skips the input gradient and gives the same gamma and beta
    /// gradients, dropout or not.
    func testLayerNormWithoutAnInputGradientGivesTheSameParameterGradients() {
        let x = random([whole, 3, 37], seed: 11), gamma = random([37], seed: 12), beta = random([37], seed: 13)
        let dy = random([whole, 3, 37], seed: 14)
        for probability: Float in [0, p] {
            let (_, saved) = LayerNormKernel.forward(x, gamma: gamma, beta: beta, epsilon: 1e-5, dropout: probability, seed: seed)
            let full = LayerNormKernel.backward(outputGradient: dy, input: x, gamma: gamma, saved: saved)
            let parameters = LayerNormKernel.backward(outputGradient: dy, input: x, gamma: gamma, saved: saved, inputGradient: false)
            XCTAssertEqual(parameters.gamma, full.gamma, "dropout \(probability)")
            XCTAssertEqual(parameters.beta, full.beta, "dropout \(probability)")
            XCTAssertEqual(parameters.input.count, 0)
            XCTAssertEqual(full.input.shape, x.shape)
        }
    }
}
