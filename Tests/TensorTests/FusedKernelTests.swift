import Foundation
import Tensor
import XCTest

/// The fused and regenerated-mask kernels against the unfused computations they replace, and their
/// independence from the thread count.
final class FusedKernelTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -scale, scale) } }
    }

    func withThreadCounts<R: Equatable>(_ body: () -> R) -> (single: R, double: R) {
        let previous = Parallelism.threadCount
        defer { Parallelism.setThreadCount(previous) }
        Parallelism.setThreadCount(1)
        let single = body()
        Parallelism.setThreadCount(2)
        return (single, body())
    }

    func testMaskRangesRegenerateTheStoredMaskAtAnyOffset() {
        let full = DropoutMask.make(shape: [1001], probability: 0.3, seed: 17)
        for range in [0..<1001, 1..<2, 3..<500, 500..<1001, 999..<1001] {
            var part = [Float](repeating: -1, count: range.count)
            part.withUnsafeMutableBufferPointer { DropoutMask.fill($0.baseAddress!, range: range, probability: 0.3, seed: 17) }
            XCTAssertEqual(part, Array(full.data[range]), "range \(range)")
        }
        let x = random([70_001], seed: 1)
        XCTAssertEqual(DropoutMask.apply(x, probability: 0.3, seed: 5), Elementwise.multiply(x, DropoutMask.make(shape: [70_001], probability: 0.3, seed: 5)))
    }

    func testBiasActivationDropoutMatchesTheUnfusedChain() {
        let (rows, width, p, seed) = (37, 45, Float(0.25), UInt64(9))
        let x = random([rows, width], seed: 2, scale: 2)
        let bias = random([width], seed: 3)
        let mask = DropoutMask.make(shape: [rows, width], probability: p, seed: seed)
        let shifted = Elementwise.add(x, bias)
        for activation in [PointwiseActivation.identity, .relu, .gelu] {
            var y = x
            let saved = BiasActivationDropout.forward(&y, bias: bias, activation: activation, dropout: p, seed: seed)
            let activated: Tensor
            switch activation {
            case .identity: activated = shifted
            case .relu: activated = Activation.relu(shifted)
            case .gelu: activated = Activation.gelu(shifted)
            }
            XCTAssertEqual(y, Elementwise.multiply(activated, mask), "\(activation) forward")

            let g = random([rows, width], seed: 4)
            let (dPre, dBias) = BiasActivationDropout.backward(outputGradient: g, output: y, saved: saved, biasGradient: true)
            let dropped = Elementwise.multiply(g, mask)
            let expected: Tensor
            switch activation {
            case .identity: expected = dropped
            case .relu: expected = Activation.reluBackward(outputGradient: dropped, input: shifted)
            case .gelu: expected = Activation.geluBackward(outputGradient: dropped, input: shifted)
            }
            for i in 0..<expected.count {
                XCTAssertEqual(dPre[flat: i], expected[flat: i], accuracy: 1e-6 * max(1, abs(expected[flat: i])), "\(activation) element \(i)")
            }
            let columnSums = Reduction.sum(dPre, axis: 0)
            for j in 0..<width { XCTAssertEqual(dBias![flat: j], columnSums[flat: j], accuracy: 1e-5) }
        }
    }

    func testResidualLayerNormMatchesSumThenNormalise() {
        let (rows, width, p, seed) = (29, 19, Float(0.2), UInt64(4))
        let x = random([rows, width], seed: 5, scale: 3), sub = random([rows, width], seed: 6)
        let gamma = random([width], seed: 7), beta = random([width], seed: 8)
        let mask = DropoutMask.make(shape: [rows, width], probability: p, seed: seed)
        let sum = Elementwise.add(x, Elementwise.multiply(sub, mask))
        let (y, saved) = LayerNormKernel.residualForward(x, sublayer: sub, dropout: p, seed: seed, gamma: gamma, beta: beta, epsilon: 1e-5)
        let (reference, referenceSaved) = LayerNormKernel.forward(sum, gamma: gamma, beta: beta, epsilon: 1e-5)
        XCTAssertEqual(y, reference)

        let g = random([rows, width], seed: 9)
        let fused = LayerNormKernel.residualBackward(outputGradient: g, gamma: gamma, saved: saved)
        let plain = LayerNormKernel.backward(outputGradient: g, input: sum, gamma: gamma, saved: referenceSaved)
        XCTAssertEqual(fused.input, plain.input)
        XCTAssertEqual(fused.sublayer, Elementwise.multiply(plain.input, mask))
        XCTAssertEqual(fused.gamma, plain.gamma)
        XCTAssertEqual(fused.beta, plain.beta)
    }

    func testColumnSumsSplitAcrossThreadsKeepTheSerialOrder() {
        let x = random([3001, 300], seed: 10)
        var serial = [Float](repeating: 0, count: 300)
        for row in 0..<3001 { for j in 0..<300 { serial[j] += x[row, j] } }
        let (single, double) = withThreadCounts { Reduction.sum(x, axis: 0) }
        XCTAssertEqual(single.data, serial)
        XCTAssertEqual(double.data, serial)
    }

    func testFusedKernelsGiveIdenticalBitsWithOneOrTwoThreads() {
        let x = random([600, 256], seed: 11), sub = random([600, 256], seed: 12), g = random([600, 256], seed: 13)
        let gamma = random([256], seed: 14), beta = random([256], seed: 15)
        let results = withThreadCounts { () -> [Tensor] in
            var y = x
            let saved = BiasActivationDropout.forward(&y, bias: beta, activation: .gelu, dropout: 0.1, seed: 3)
            let (dPre, dBias) = BiasActivationDropout.backward(outputGradient: g, output: y, saved: saved, biasGradient: true)
            let (z, residual) = LayerNormKernel.residualForward(x, sublayer: sub, dropout: 0.1, seed: 4, gamma: gamma, beta: beta, epsilon: 1e-5)
            let grads = LayerNormKernel.residualBackward(outputGradient: g, gamma: gamma, saved: residual)
            return [y, dPre, dBias!, z, grads.input, grads.sublayer, grads.gamma, grads.beta,
                    DropoutMask.apply(x, probability: 0.1, seed: 5)]
        }
        XCTAssertEqual(results.single, results.double)
    }

    func testProductsSplitAcrossThreadsMatchOneCallAndRepeatExactly() {
        // Large enough to be split (by rows, and by columns for the wide ones); odd sizes leave a short
        // last block. OpenBLAS itself does not promise the same bits for different thread counts, so
        // one and two threads are compared with a tolerance, and two runs on two threads exactly.
        let a = random([1037, 203], seed: 19), b = random([203, 301], seed: 20)
        let wide = random([203, 2501], seed: 21)
        let products = { [GEMM.matmul(a, b), GEMM.matmul(a, a, transposeB: true), GEMM.matmul(b, wide, transposeA: true),
                          GEMM.matmul(a, wide)] }
        let (single, double) = withThreadCounts(products)
        let previous = Parallelism.threadCount
        Parallelism.setThreadCount(2)
        XCTAssertEqual(products(), double, "a split product must repeat bit for bit")
        Parallelism.setThreadCount(previous)
        for (one, two) in zip(single, double) {
            XCTAssertEqual(one.shape, two.shape)
            let worst = zip(one.data, two.data).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, "one vs two threads, shape \(one.shape)")
        }
        for (row, column) in [(0, 2500), (1036, 1), (300, 1250)] {
            var expected: Double = 0
            for p in 0..<203 { expected += Double(a[row, p]) * Double(wide[p, column]) }
            XCTAssertEqual(Double(double[3][row, column]), expected, accuracy: 1e-4)
        }
    }

    func testContiguousSoftmaxMatchesADoublePrecisionReference() {
        // Rows of odd length (vector body and tail), a wide range of scores, masked (-infinity) entries.
        var generator = SeededGenerator(seed: 22)
        let (rows, length) = (9, 37)
        let x = Tensor(shape: [rows, length]) { out in
            for i in 0..<out.count { out[i] = i % 11 == 3 ? -.infinity : generator.nextUniform(in: -90, 30) }
        }
        let y = Softmax.forward(x, axis: 1)
        for row in 0..<rows {
            let scores = (0..<length).map { x[row, $0] }
            let maximum = scores.max()!
            // The shift by the maximum is rounded in Float, as the kernel does; the rest in Double.
            let shifted = scores.map { Double($0 - maximum) }
            let total = shifted.map { Foundation.exp($0) }.reduce(0, +)
            for j in 0..<length {
                let expected = Foundation.exp(shifted[j]) / total
                XCTAssertEqual(Double(y[row, j]), expected, accuracy: 1e-6 * max(expected, 1e-30), "row \(row) column \(j)")
                if scores[j] == -.infinity { XCTAssertEqual(y[row, j], 0) }
            }
        }
    }

    func testAttentionDropoutAppliesTheMaskItReports() {
        let (batch, length, width, heads) = (2, 5, 8, 2)
        let q = random([batch, length, width], seed: 16)
        let k = random([batch, length, width], seed: 17)
        let v = random([batch, length, width], seed: 18)
        let (out, saved) = AttentionKernel.forward(query: q, key: k, value: v, heads: heads, keyIsPadding: nil,
                                                   dropout: 0.4, dropoutSeed: 21)
        let mask = saved.dropoutMask!
        XCTAssertEqual(mask.shape, [batch, heads, length, length])
        let headWidth = width / heads
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<length {
                    for d in 0..<headWidth {
                        var value: Float = 0
                        for j in 0..<length {
                            value += saved.probabilities[b, h, i, j] * mask[b, h, i, j] * v[b, j, h * headWidth + d]
                        }
                        XCTAssertEqual(out[b, i, h * headWidth + d], value, accuracy: 1e-5)
                    }
                }
            }
        }
        let kept = mask.data.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.6) < 1e-6 })
        XCTAssertGreaterThan(kept.count, 0)
        XCTAssertLessThan(kept.count, mask.count)
    }
}
