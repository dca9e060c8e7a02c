import Foundation
import Tensor
import XCTest

/// Forward kernels against straightforward Double-precision references, on odd shapes.
final class KernelReferenceTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -scale, scale) } }
    }

    func assertClose(_ actual: Tensor, _ expected: [Double], tolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for i in 0..<min(actual.count, expected.count) where abs(Double(actual[flat: i]) - expected[i]) > tolerance * max(1, abs(expected[i])) {
            XCTFail("element \(i): \(actual[flat: i]) vs reference \(expected[i])", file: file, line: line)
            return
        }
    }

    func testMatmulMatchesReferenceForAllTransposesAndBatches() {
        let (m, k, n) = (7, 17, 5)
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let a = random(transposeA ? [3, k, m] : [3, m, k], seed: 1)
                let b = random(transposeB ? [3, n, k] : [3, k, n], seed: 2)
                let c = GEMM.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
                var expected = [Double](repeating: 0, count: 3 * m * n)
                for batch in 0..<3 {
                    for i in 0..<m {
                        for j in 0..<n {
                            var total = 0.0
                            for p in 0..<k {
                                let av = transposeA ? a[batch, p, i] : a[batch, i, p]
                                let bv = transposeB ? b[batch, j, p] : b[batch, p, j]
                                total += Double(av) * Double(bv)
                            }
                            expected[(batch * m + i) * n + j] = total
                        }
                    }
                }
                XCTAssertEqual(c.shape, [3, m, n])
                assertClose(c, expected)
            }
        }
    }

    func testAttentionForwardMatchesReferenceWithPaddingMask() {
        let (batch, queryLength, keyLength, width, heads) = (3, 4, 5, 12, 3)
        let q = random([batch, queryLength, width], seed: 3)
        let k = random([batch, keyLength, width], seed: 4)
        let v = random([batch, keyLength, width], seed: 5)
        var padding = [Bool](repeating: false, count: batch * keyLength)
        padding[3] = true; padding[4] = true; padding[14] = true
        let (out, _) = AttentionKernel.forward(query: q, key: k, value: v, heads: heads, keyIsPadding: padding,
                                               dropout: 0, dropoutSeed: 0)
        let headWidth = width / heads
        var expected = [Double](repeating: 0, count: out.count)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<queryLength {
                    var scores = [Double](repeating: -.infinity, count: keyLength)
                    for j in 0..<keyLength where !padding[b * keyLength + j] {
                        var dot = 0.0
                        for d in 0..<headWidth { dot += Double(q[b, i, h * headWidth + d]) * Double(k[b, j, h * headWidth + d]) }
                        scores[j] = dot / Double(headWidth).squareRoot()
                    }
                    let maximum = scores.max()!
                    let weights = scores.map { exp($0 - maximum) }
                    let total = weights.reduce(0, +)
                    for d in 0..<headWidth {
                        var value = 0.0
                        for j in 0..<keyLength { value += weights[j] / total * Double(v[b, j, h * headWidth + d]) }
                        expected[(b * queryLength + i) * width + h * headWidth + d] = value
                    }
                }
            }
        }
        assertClose(out, expected)
    }

    /// Each head's products address its columns inside the `[B, L, D]` operands: the output and every gradient must
    /// be, bit for bit, those of that head run alone on its own `[B, L, D / H]` columns. Head widths that are whole
    /// vectors (32, 48) and not (6), keys past one vector, padded keys.
    func testAttentionGivesEachHeadTheBitsOfItRunAlone() {
        for (queryLength, keyLength, width, heads) in [(9, 76, 64, 2), (5, 17, 96, 2), (4, 7, 12, 2)] {
            let batch = 2, headWidth = width / heads
            let q = random([batch, queryLength, width], seed: 31), k = random([batch, keyLength, width], seed: 32)
            let v = random([batch, keyLength, width], seed: 33), dOut = random([batch, queryLength, width], seed: 34)
            let padding = (0..<(batch * keyLength)).map { $0 % keyLength == 2 }
            let (out, saved) = AttentionKernel.forward(query: q, key: k, value: v, heads: heads, keyIsPadding: padding,
                                                       dropout: 0, dropoutSeed: 0)
            let grads = AttentionKernel.backward(outputGradient: dOut, query: q, key: k, value: v, heads: heads, saved: saved)
            func columns(_ t: Tensor, head h: Int) -> Tensor {
                let length = t.shape[1]
                return Tensor(shape: [batch, length, headWidth]) { o in
                    for row in 0..<(batch * length) {
                        for d in 0..<headWidth { o[row * headWidth + d] = t.data[row * width + h * headWidth + d] }
                    }
                }
            }
            for h in 0..<heads {
                let (qh, kh, vh) = (columns(q, head: h), columns(k, head: h), columns(v, head: h))
                let (alone, savedAlone) = AttentionKernel.forward(query: qh, key: kh, value: vh, heads: 1, keyIsPadding: padding,
                                                                  dropout: 0, dropoutSeed: 0)
                let gradsAlone = AttentionKernel.backward(outputGradient: columns(dOut, head: h), query: qh, key: kh, value: vh,
                                                          heads: 1, saved: savedAlone)
                let label = "\(queryLength) x \(keyLength), head \(h) of \(heads), width \(headWidth)"
                for (name, whole, single) in [("output", out, alone), ("dq", grads.query, gradsAlone.query),
                                              ("dk", grads.key, gradsAlone.key), ("dv", grads.value, gradsAlone.value)] {
                    let differing = zip(columns(whole, head: h).data, single.data).enumerated()
                        .first { $0.element.0.bitPattern != $0.element.1.bitPattern }
                    XCTAssertNil(differing, "\(name), \(label): element \(differing?.offset ?? -1) is \(differing?.element.0 ?? 0), "
                                 + "alone \(differing?.element.1 ?? 0)")
                }
            }
        }
    }

    func testConv1DMatchesReference() {
        let (batch, length, cIn, cOut, kernel, stride, padding) = (2, 9, 3, 4, 3, 2, 1)
        let x = random([batch, length, cIn], seed: 6)
        let w = random([cOut, kernel, cIn], seed: 7)
        let bias = random([cOut], seed: 8)
        let (y, _) = Conv1DKernel.forward(x, weight: w, bias: bias, stride: stride, padding: padding)
        let outLength = (length + 2 * padding - kernel) / stride + 1
        XCTAssertEqual(y.shape, [batch, outLength, cOut])
        var expected: [Double] = []
        for b in 0..<batch {
            for t in 0..<outLength {
                for o in 0..<cOut {
                    var total = Double(bias[o])
                    for j in 0..<kernel {
                        let position = t * stride - padding + j
                        guard position >= 0 && position < length else { continue }
                        for c in 0..<cIn { total += Double(w[o, j, c]) * Double(x[b, position, c]) }
                    }
                    expected.append(total)
                }
            }
        }
        assertClose(y, expected)
    }

    func testLayerNormMatchesReference() {
        let x = random([5, 19], seed: 9, scale: 3)
        let gamma = random([19], seed: 10), beta = random([19], seed: 11)
        let (y, _) = LayerNormKernel.forward(x, gamma: gamma, beta: beta, epsilon: 1e-5)
        var expected: [Double] = []
        for r in 0..<5 {
            let row = (0..<19).map { Double(x[r, $0]) }
            let mean = row.reduce(0, +) / 19
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 19
            for j in 0..<19 { expected.append((row[j] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[j]) + Double(beta[j])) }
        }
        assertClose(y, expected, tolerance: 1e-5)
    }

    func testSoftmaxOfFullyMaskedLineIsZeroAndLogSoftmaxIsStable() {
        let x = Tensor(shape: [2, 3], data: [-.infinity, -.infinity, -.infinity, 1000, 0, -1000])
        XCTAssertEqual(Softmax.forward(x, axis: 1).data, [0, 0, 0, 1, 0, 0])
        let logP = Softmax.logForward(Tensor(shape: [1, 3], data: [1000, 0, -1000]), axis: 1)
        XCTAssertEqual(logP.data, [0, -1000, -2000])
    }

    func testBroadcastingCombinesStretchedDimensions() {
        let a = Tensor(shape: [2, 1, 3], data: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [4, 1], data: [10, 20, 30, 40])
        let c = Elementwise.add(a, b)
        XCTAssertEqual(c.shape, [2, 4, 3])
        XCTAssertEqual(c[1, 2, 0], 34)
        XCTAssertEqual(Broadcasting.sum(c, toShape: [4, 1])[flat: 3], 40 * 6 + 21)
    }

    func testInterpolationBlendsNeighboursAndZeroPadsOutside() {
        let x = Tensor(shape: [1, 3, 2], data: [0, 1, 10, 11, 20, 21])
        let y = InterpolationKernel.forward(x, positions: Tensor(shape: [1, 3], data: [0.25, 1.5, 2.5]))
        XCTAssertEqual(y.data, [2.5, 3.5, 15, 16, 10, 10.5])
    }

    func testLossesMatchTheirFormulas() {
        let logits = Tensor(shape: [2, 3], data: [1, 2, 3, 0, 0, 0])
        let (ce, _) = LossKernels.crossEntropy(logits: logits, targets: [2, 0], classWeights: [1, 1, 3])
        let lse = log(exp(1.0) + exp(2.0) + exp(3.0))
        XCTAssertEqual(Double(ce), (3 * (lse - 3) + 1 * log(3.0)) / 4, accuracy: 1e-6)
        let x = Tensor(shape: [2], data: [0.5, -1]), t = Tensor(shape: [2], data: [1, 0])
        let p0 = 1 / (1 + exp(-0.5)), p1 = 1 / (1 + exp(1.0))
        let focal = (0.25 * pow(1 - p0, 2) * -log(p0) + 0.75 * pow(p1, 2) * -log(1 - p1)) / 2
        XCTAssertEqual(Double(LossKernels.sigmoidFocal(x, t, alpha: 0.25, gamma: 2, reduction: .mean)), focal, accuracy: 1e-6)
    }
}
