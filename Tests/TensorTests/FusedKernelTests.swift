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

    // MARK: plain references, written here from the definitions

    /// Inverted dropout as documented on `DropoutMask`: element `i` is dropped when 16-bit quarter `i % 4` of
    /// `CounterHash.bits(seed, i / 4)` is below `round(p * 65536)`, and kept scaled by `1 / (1 - p)` otherwise.
    static func referenceMask(count: Int, probability p: Float, seed: UInt64) -> [Double] {
        let threshold = UInt64((Double(p) * 65_536).rounded())
        return (0..<count).map { i in
            let quarter = (CounterHash.bits(seed: seed, counter: i / 4) >> UInt64(16 * (i % 4))) & 0xFFFF
            return quarter < threshold ? 0 : Double(1 / (1 - p))
        }
    }

    static func gelu(_ z: Double) -> Double { 0.5 * z * (1 + Foundation.erf(z / 2.0.squareRoot())) }
    static func geluDerivative(_ z: Double) -> Double {
        0.5 * (1 + Foundation.erf(z / 2.0.squareRoot())) + z * Foundation.exp(-z * z / 2) / (2 * Double.pi).squareRoot()
    }

    func testReferenceMaskDropsAboutPAndScalesTheRest() {
        let mask = Self.referenceMask(count: 40_000, probability: 0.25, seed: 3)
        let kept = mask.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { $0 == Double(Float(1) / 0.75) })
        // Binomial sd at n = 40000 is 0.0022: 4.5 sigma.
        XCTAssertEqual(Double(kept.count) / 40_000, 0.75, accuracy: 0.01)
        XCTAssertEqual(DropoutMask.make(shape: [40_000], probability: 0.25, seed: 3).data.map(Double.init), mask)
    }

    func testBiasActivationDropoutMatchesAPlainReference() {
        let (rows, width, p, seed) = (37, 45, Float(0.25), UInt64(9))
        let x = random([rows, width], seed: 2, scale: 2)
        let bias = random([width], seed: 3)
        let g = random([rows, width], seed: 4)
        let mask = Self.referenceMask(count: rows * width, probability: p, seed: seed)
        for activation in [PointwiseActivation.identity, .relu, .gelu] {
            var y = x
            let saved = BiasActivationDropout.forward(&y, bias: bias, activation: activation, dropout: p, seed: seed)
            let (dPre, dBias) = BiasActivationDropout.backward(outputGradient: g, output: y, saved: saved, biasGradient: true)
            var biasGradient = [Double](repeating: 0, count: width)
            for r in 0..<rows {
                for j in 0..<width {
                    let i = r * width + j
                    let z = Double(x[r, j]) + Double(bias[flat: j])
                    let (value, slope): (Double, Double)
                    switch activation {
                    case .identity: (value, slope) = (z, 1)
                    case .relu: (value, slope) = (max(z, 0), z > 0 ? 1 : 0)
                    case .gelu: (value, slope) = (Self.gelu(z), Self.geluDerivative(z))
                    }
                    XCTAssertEqual(Double(y[r, j]), value * mask[i], accuracy: 1e-5 * max(1, abs(value)), "\(activation) forward \(i)")
                    let expected = Double(g[r, j]) * mask[i] * slope
                    XCTAssertEqual(Double(dPre[r, j]), expected, accuracy: 1e-5 * max(1, abs(expected)), "\(activation) backward \(i)")
                    biasGradient[j] += expected
                }
            }
            for j in 0..<width { XCTAssertEqual(Double(dBias![flat: j]), biasGradient[j], accuracy: 1e-4, "\(activation) bias \(j)") }
        }
    }

    func testResidualLayerNormMatchesAPlainReference() {
        let (rows, width, p, seed) = (29, 19, Float(0.2), UInt64(4))
        let x = random([rows, width], seed: 5, scale: 3), sub = random([rows, width], seed: 6)
        let gamma = random([width], seed: 7), beta = random([width], seed: 8)
        let g = random([rows, width], seed: 9)
        let mask = Self.referenceMask(count: rows * width, probability: p, seed: seed)
        let (y, saved) = LayerNormKernel.residualForward(x, sublayer: sub, dropout: p, seed: seed, gamma: gamma, beta: beta, epsilon: 1e-5)
        let grads = LayerNormKernel.residualBackward(outputGradient: g, gamma: gamma, saved: saved)
        var dGamma = [Double](repeating: 0, count: width), dBeta = [Double](repeating: 0, count: width)
        for r in 0..<rows {
            let sum = (0..<width).map { Double(x[r, $0]) + Double(sub[r, $0]) * mask[r * width + $0] }
            let mean = sum.reduce(0, +) / Double(width)
            let variance = sum.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
            let rstd = 1 / (variance + 1e-5).squareRoot()
            let normalised = sum.map { ($0 - mean) * rstd }
            // d normalised = g * gamma; dx = rstd (dn - mean(dn) - n * mean(dn * n)).
            let dn = (0..<width).map { Double(g[r, $0]) * Double(gamma[flat: $0]) }
            let meanDn = dn.reduce(0, +) / Double(width)
            let meanDnN = zip(dn, normalised).map { $0 * $1 }.reduce(0, +) / Double(width)
            for j in 0..<width {
                let out = normalised[j] * Double(gamma[flat: j]) + Double(beta[flat: j])
                XCTAssertEqual(Double(y[r, j]), out, accuracy: 1e-5 * max(1, abs(out)), "forward \(r), \(j)")
                let dx = rstd * (dn[j] - meanDn - normalised[j] * meanDnN)
                XCTAssertEqual(Double(grads.input[r, j]), dx, accuracy: 1e-4 * max(1, abs(dx)), "input gradient \(r), \(j)")
                XCTAssertEqual(Double(grads.sublayer[r, j]), dx * mask[r * width + j], accuracy: 1e-4 * max(1, abs(dx)),
                               "sublayer gradient \(r), \(j)")
                dGamma[j] += Double(g[r, j]) * normalised[j]
                dBeta[j] += Double(g[r, j])
            }
        }
        for j in 0..<width {
            XCTAssertEqual(Double(grads.gamma[flat: j]), dGamma[j], accuracy: 1e-4 * max(1, abs(dGamma[j])), "gamma \(j)")
            XCTAssertEqual(Double(grads.beta[flat: j]), dBeta[j], accuracy: 1e-4 * max(1, abs(dBeta[j])), "beta \(j)")
        }
    }

    /// Sums along an axis (a bias gradient's column sums; on AVX-512, 64 columns in registers with masked edges)
    /// give the serial loop's bits, on one thread or two, for widths around the vector and block edges.
    func testColumnSumsSplitAcrossThreadsKeepTheSerialOrder() {
        for (outer, extent, inner) in [(1, 3001, 300), (1, 7, 17), (1, 1, 1), (1, 40, 64), (1, 33, 129), (5, 50, 70), (2, 9, 16)] {
            let x = random([outer, extent, inner], seed: 10)
            var serial = [Float](repeating: 0, count: outer * inner)
            for o in 0..<outer { for e in 0..<extent { for j in 0..<inner { serial[o * inner + j] += x[o, e, j] } } }
            let (single, double) = withThreadCounts { Reduction.sum(x, axis: 1) }
            XCTAssertEqual(single.data, serial, "\(outer) x \(extent) x \(inner), one thread")
            XCTAssertEqual(double.data, serial, "\(outer) x \(extent) x \(inner), two threads")
        }
    }

    /// Runs `body` on the portable loops, then on their AVX-512 versions in C, and checks that every result has the
    /// same bits.
    func assertVectorKernelsGiveThePortableBits(_ label: String, _ body: () -> [Tensor],
                                                file: StaticString = #filePath, line: UInt = #line) {
        VectorKernels.enabled = false
        let portable = body()
        VectorKernels.enabled = true
        let vector = body()
        for (index, (a, b)) in zip(vector, portable).enumerated() {
            let differing = zip(a.data, b.data).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(label), result \(index): elements whose bits differ", file: file, line: line)
        }
    }

    /// Layer norm's AVX-512 rows give the portable rows' bits: plain and residual, forward and backward (with and
    /// without the input gradient), with and without dropout, widths that end mid-vector and mid-block (the input
    /// projection's 2818 among them), rows of a batch slice.
    func testLayerNormsAVX512RowsGiveThePortableRowsBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        defer { VectorKernels.enabled = true }
        for (index, width) in [1, 7, 8, 16, 17, 33, 256, 2818].enumerated() {
            let seed = UInt64(10 * index)
            // Offsets make the rows' statistics unlike each other and the sums' rounding matter.
            let x = random([3, 5, width], seed: seed, scale: 3), sub = random([3, 5, width], seed: seed + 1)
            let dy = random([3, 5, width], seed: seed + 2), gamma = random([width], seed: seed + 3)
            let beta = random([width], seed: seed + 4)
            for p: Float in [0, 0.25] {
                func run() -> [Tensor] {
                    let (y, saved) = LayerNormKernel.forward(x, gamma: gamma, beta: beta, epsilon: 1e-5, dropout: p, seed: 9,
                                                             rows: BatchRows(first: 1, whole: 4))
                    let grads = LayerNormKernel.backward(outputGradient: dy, input: x, gamma: gamma, saved: saved)
                    let dataGrads = LayerNormKernel.backward(outputGradient: dy, input: x, gamma: gamma, saved: saved,
                                                             inputGradient: false)
                    let (z, residual) = LayerNormKernel.residualForward(x, sublayer: sub, dropout: p, seed: 11, gamma: gamma,
                                                                        beta: beta, epsilon: 1e-5)
                    let rGrads = LayerNormKernel.residualBackward(outputGradient: dy, gamma: gamma, saved: residual)
                    return [y, Tensor(shape: [15], data: saved.mean), Tensor(shape: [15], data: saved.reciprocalStd),
                            grads.input, grads.gamma, grads.beta, dataGrads.gamma, dataGrads.beta,
                            z, residual.normalized, Tensor(shape: [15], data: residual.reciprocalStd),
                            rGrads.input, rGrads.sublayer, rGrads.gamma, rGrads.beta]
                }
                assertVectorKernelsGiveThePortableBits("width \(width), p \(p)", run)
            }
        }
    }

    /// Attention's AVX-512 softmax backward rows and dropout give the portable loops' bits: key counts that end
    /// mid-vector and mid-block, with and without dropout, with padded keys; values and every gradient.
    func testAttentionsAVX512RowsGiveThePortableBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        defer { VectorKernels.enabled = true }
        for (index, keys) in [1, 7, 16, 17, 33, 76].enumerated() {
            let seed = UInt64(20 * index)
            let q = random([2, 9, 16], seed: seed, scale: 2), k = random([2, keys, 16], seed: seed + 1, scale: 2)
            let v = random([2, keys, 16], seed: seed + 2), dOut = random([2, 9, 16], seed: seed + 3)
            let padding = (0..<(2 * keys)).map { $0 % keys == keys - 1 && keys > 1 }
            for p: Float in [0, 0.2] {
                func run() -> [Tensor] {
                    let (output, saved) = AttentionKernel.forward(query: q, key: k, value: v, heads: 4, keyIsPadding: padding,
                                                                  dropout: p, dropoutSeed: 13)
                    let grads = AttentionKernel.backward(outputGradient: dOut, query: q, key: k, value: v, heads: 4, saved: saved)
                    return [output, saved.probabilities, grads.query, grads.key, grads.value]
                }
                assertVectorKernelsGiveThePortableBits("\(keys) keys, p \(p)", run)
            }
        }
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

    /// The in-place rows attention uses (`Softmax512` on a CPU with AVX-512) give `softmaxLine`'s bits: lengths
    /// around the 8- and 16-lane chunk edges, masked entries, a wholly masked row, scores far apart.
    func testSoftmaxRowsInPlaceGiveTheLineKernelsBits() {
        var generator = SeededGenerator(seed: 23)
        for length in [1, 5, 8, 9, 15, 16, 17, 24, 31, 40, 41, 75, 100] {
            let rows = 4
            var x = (0..<(rows * length)).map { i -> Float in
                i % 7 == 2 ? -.infinity : generator.nextUniform(in: -90, 30)
            }
            for j in 0..<length { x[j] = -.infinity }
            var line = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { input in
                line.withUnsafeMutableBufferPointer { output in
                    for r in 0..<rows {
                        Softmax.softmaxLine(input.baseAddress! + r * length, output.baseAddress! + r * length,
                                            count: length, stride: 1, logarithmic: false)
                    }
                }
            }
            x.withUnsafeMutableBufferPointer { Softmax.contiguousRowsInPlace($0.baseAddress!, rows: rows, count: length) }
            XCTAssertEqual(x.map(\.bitPattern), line.map(\.bitPattern), "rows of \(length)")
            XCTAssertEqual(x[0..<length].max(), 0, "a wholly masked row is zeros")
            XCTAssertEqual(Double(x[length..<(2 * length)].reduce(0, +)), 1, accuracy: 1e-5, "rows of \(length)")
        }
    }

    func testAttentionWithDropoutMatchesAPlainReference() {
        let (batch, length, width, heads, p, seed) = (2, 5, 8, 2, Float(0.4), UInt64(21))
        let q = random([batch, length, width], seed: 16)
        let k = random([batch, length, width], seed: 17)
        let v = random([batch, length, width], seed: 18)
        let (out, saved) = AttentionKernel.forward(query: q, key: k, value: v, heads: heads, keyIsPadding: nil,
                                                   dropout: p, dropoutSeed: seed)
        let headWidth = width / heads
        var kept = 0
        for b in 0..<batch {
            for h in 0..<heads {
                // Each (sample, head) slice draws its mask from its own seed, derived from the call's.
                let mask = Self.referenceMask(count: length * length, probability: p,
                                              seed: CounterHash.bits(seed: seed, counter: b * heads + h))
                kept += mask.filter { $0 != 0 }.count
                for i in 0..<length {
                    let scores = (0..<length).map { j in
                        (0..<headWidth).map { d in Double(q[b, i, h * headWidth + d]) * Double(k[b, j, h * headWidth + d]) }
                            .reduce(0, +) / Double(headWidth).squareRoot()
                    }
                    let top = scores.max()!
                    let total = scores.map { Foundation.exp($0 - top) }.reduce(0, +)
                    let weights = (0..<length).map { Foundation.exp(scores[$0] - top) / total * mask[i * length + $0] }
                    for j in 0..<length { XCTAssertEqual(Double(saved.dropoutMask![b, h, i, j]), mask[i * length + j]) }
                    for d in 0..<headWidth {
                        let expected = (0..<length).map { weights[$0] * Double(v[b, $0, h * headWidth + d]) }.reduce(0, +)
                        XCTAssertEqual(Double(out[b, i, h * headWidth + d]), expected, accuracy: 1e-5, "\(b) \(h) \(i) \(d)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(kept, 0)
        XCTAssertLessThan(kept, batch * heads * length * length, "some weights were dropped")
    }
}
