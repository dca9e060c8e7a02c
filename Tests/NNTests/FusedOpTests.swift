import NN
import Tensor
import XCTest

/// The fused transformer ops: finite-difference gradients, and agreement with the unfused chains they
/// replace (same dropout masks, drawn from the generator at the same point).
final class FusedOpTests: XCTestCase {
    let checker = GradientChecker()

    func testLinearActivationGradientsWithDropout() {
        let x = randomVariable([2, 3, 5], seed: 1)
        let weight = randomVariable([4, 5], seed: 2)
        let bias = randomVariable([4], seed: 3)
        for activation in [PointwiseActivation.identity, .gelu] {
            checker.check([x, weight, bias]) {
                var generator = SeededGenerator(seed: 4)
                return linearActivation(x, weight: weight, bias: bias, activation: activation, dropout: 0.3, generator: &generator)
            }
        }
        checker.check([x, weight, bias]) {
            var generator = SeededGenerator(seed: 4)
            return linearActivation(x, weight: weight, bias: bias, activation: .relu, dropout: 0.3, generator: &generator)
        }
        checker.check([x, weight]) { linearActivation(x, weight: weight, bias: nil, activation: .gelu) }
    }

    func testTheNormOfARectifiedInputHasTheBitsOfTheReLUThenTheNorm() {
        // The input projection's ReLU between blocks, applied by the next block's norm as it reads each row: the same
        // bits as the ReLU op and then the norm, forward and backward, on the vector kernels and the portable loops,
        // with the input a leaf that needs no gradient too (only gamma's and beta's are made).
        defer { VectorKernels.enabled = GEMM.avx512Available }
        for vector in [true, false] where !vector || GEMM.avx512Available {
            VectorKernels.enabled = vector
            for (rows, width) in [(150, 256), (5, 7)] {
                for inputNeedsGradient in [true, false] {
                    var results: [[[Float]]] = []
                    for fused in [false, true] {
                        var values = randomVariable([rows, width], seed: 50).value
                        values.withUnsafeMutableBufferPointer { v in v[0] = 0; v[1] = -0.0; v[3] = 0 }
                        let x = Variable(values, requiresGrad: inputNeedsGradient)
                        let gamma = randomVariable([width], seed: 51), beta = randomVariable([width], seed: 52)
                        let upstream = randomVariable([rows, width], seed: 53, requiresGrad: false)
                        var generator = SeededGenerator(seed: 54)
                        let y = fused
                            ? layerNorm(rectified: x, gamma: gamma, beta: beta, dropout: 0.3, generator: &generator)
                            : layerNorm(x.relu(), gamma: gamma, beta: beta, dropout: 0.3, generator: &generator)
                        (y * upstream).sum().backward()
                        results.append([y.value.data, x.grad?.data ?? [], gamma.grad?.data ?? [], beta.grad?.data ?? []])
                    }
                    for (index, name) in ["output", "input gradient", "gamma gradient", "beta gradient"].enumerated() {
                        let (reference, fused) = (results[0][index], results[1][index])
                        XCTAssertEqual(fused.count, index == 1 && !inputNeedsGradient ? 0 : (index < 2 ? rows * width : width), name)
                        let differing = zip(fused, reference).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "values whose bits differ: \(name), vector \(vector), width \(width)")
                    }
                    if inputNeedsGradient {
                        XCTAssertTrue(results[1][1].contains(0) && results[1][1].contains { $0 != 0 },
                                      "the gradient is stopped where the input is not positive, and passed where it is")
                    }
                }
            }
        }
    }

    func testTwoProjectionAttentionHasTheBitsOfTheConcatenatedHeads() {
        // What the decoder's cross-attention computed before the two-projection kernel: each head's query and key made
        // by concatenating the two projections' columns, values padded with zero columns, and those output columns
        // dropped. On the AVX-512 kernel the same bits forward and backward (OpenBLAS: the same values to rounding).
        func concatenated(_ query: Variable, _ querySine: Variable, _ key: Variable, _ keyPosition: Variable, _ value: Variable,
                          heads: Int, mask: KeyPaddingMask, dropout: Float, generator: inout SeededGenerator) -> Variable {
            let (batch, queries, width, keys) = (query.shape[0], query.shape[1], query.shape[2], key.shape[1])
            let headWidth = width / heads
            func interleave(_ a: Variable, _ b: Variable, length: Int) -> Variable {
                concat([a.reshaped([batch, length, heads, headWidth]), b.reshaped([batch, length, heads, headWidth])], axis: 3)
                    .reshaped([batch, length, 2 * width])
            }
            let padded = value.reshaped([batch, keys, heads, headWidth]).padded(axis: 3, before: 0, after: headWidth)
                .reshaped([batch, keys, 2 * width])
            let attended = scaledDotProductAttention(
                query: interleave(query, querySine, length: queries), key: interleave(key, keyPosition, length: keys),
                value: padded, heads: heads, keyPaddingMask: mask, dropout: dropout, generator: &generator)
            return attended.reshaped([batch, queries, heads, 2 * headWidth]).sliced(axis: 3, 0..<headWidth)
                .reshaped([batch, queries, width])
        }
        let kernels: [GEMM.Kernel] = GEMM.avx512Available ? [.avx512, .openBLAS] : [.openBLAS]
        let previousKernel = GEMM.kernel
        defer { GEMM.kernel = previousKernel }
        // The decoder's shapes (8 heads of 32 columns, 10 queries, 75 keys), and heads narrower than a vector.
        for (batch, queries, keys, width, heads) in [(3, 10, 75, 256, 8), (2, 3, 7, 8, 2)] {
            var flags = [Bool](repeating: false, count: batch * keys)
            for j in (keys - 2)..<keys { flags[(batch - 1) * keys + j] = true }
            let mask = KeyPaddingMask(batch: batch, length: keys, isPadding: flags)
            let upstream = randomVariable([batch, queries, width], seed: 46, requiresGrad: false)
            for kernel in kernels {
                GEMM.kernel = kernel
                var results: [[[Float]]] = []
                for twoProjection in [false, true] {
                    let inputs = [randomVariable([batch, queries, width], seed: 41), randomVariable([batch, queries, width], seed: 42),
                                  randomVariable([batch, keys, width], seed: 43), randomVariable([batch, keys, width], seed: 44),
                                  randomVariable([batch, keys, width], seed: 45)]
                    var generator = SeededGenerator(seed: 47)
                    let output = twoProjection
                        ? scaledDotProductAttention(query: inputs[0], querySecond: inputs[1], key: inputs[2], keySecond: inputs[3],
                                                    value: inputs[4], heads: heads, keyPaddingMask: mask, dropout: 0.1,
                                                    generator: &generator)
                        : concatenated(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], heads: heads, mask: mask,
                                       dropout: 0.1, generator: &generator)
                    XCTAssertEqual(generator.next(), { var g = SeededGenerator(seed: 47); _ = g.next(); return g.next() }(),
                                   "one dropout seed drawn")
                    (output * upstream).sum().backward()
                    results.append([output.value.data] + inputs.map { $0.grad?.data ?? [] })
                }
                let names = ["output", "query gradient", "second query gradient", "key gradient", "second key gradient",
                             "value gradient"]
                for (index, name) in names.enumerated() {
                    let (reference, fused) = (results[0][index], results[1][index])
                    XCTAssertEqual(fused.count, batch * (index < 3 ? queries : keys) * width, name)
                    if kernel == .avx512 {
                        let differing = zip(fused, reference).filter { $0.bitPattern != $1.bitPattern }.count
                        XCTAssertEqual(differing, 0, "values whose bits differ: \(name), \(kernel), width \(width)")
                    } else {
                        let error = zip(fused, reference).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThan(error, 1e-5, "\(name), \(kernel), width \(width)")
                    }
                }
                XCTAssertTrue(results[1][5].contains { $0 != 0 }, "the value gradient reaches the values")
            }
        }
    }

    func testALinearInputGradientAddedByItsProductGivesTheBitsOfTheSeparateSum() {
        // x feeds two linear layers: the second input gradient to arrive is added by its product (beta 1) where the
        // AVX-512 kernel's depth block holds the depth, and as a tensor of its own otherwise; the same bits either way.
        let kernels: [GEMM.Kernel] = GEMM.avx512Available ? [.avx512, .openBLAS] : [.openBLAS]
        let previousKernel = GEMM.kernel
        defer { GEMM.kernel = previousKernel }
        for kernel in kernels {
            GEMM.kernel = kernel
            // 384, the AVX-512 kernel's depth block: the deepest product that adds itself, and one deeper.
            XCTAssertEqual([40, 384, 385].map { GEMM.addsProductInOneRounding(depth: $0) },
                           kernel == .avx512 ? [true, true, false] : [false, false, false])
            for depth in [40, 384, 385] {
                let x = randomVariable([3, 37, 24], seed: 20)
                let weights = [randomVariable([depth, 24], seed: 21), randomVariable([depth, 24], seed: 22)]
                let biases = [randomVariable([depth], seed: 23), randomVariable([depth], seed: 24)]
                let scales = [randomVariable([3, 37, depth], seed: 25).value, randomVariable([3, 37, depth], seed: 26).value]
                let outputs = (0..<2).map { linear(x, weight: weights[$0], bias: biases[$0]) * Variable(scales[$0]) }
                (outputs[0].sum() + outputs[1].sum()).backward()
                // Each layer's input gradient is its output gradient (the scales) times its weight, made on its own.
                let separate = (0..<2).map { GEMM.matmul(scales[$0].reshaped([111, depth]), weights[$0].value).reshaped([3, 37, 24]) }
                XCTAssertEqual(x.grad!.data.map(\.bitPattern), Elementwise.add(separate[0], separate[1]).data.map(\.bitPattern),
                               "\(kernel) kernel, depth \(depth)")
            }
        }
    }

    func testResidualLayerNormGradientsWithDropout() {
        let x = randomVariable([3, 7], seed: 5)
        let sub = randomVariable([3, 7], seed: 6)
        let gamma = randomVariable([7], seed: 7)
        let beta = randomVariable([7], seed: 8)
        for p: Float in [0, 0.3] {
            checker.check([x, sub, gamma, beta]) {
                var generator = SeededGenerator(seed: 9)
                return residualLayerNorm(x, adding: sub, dropout: p, generator: &generator, gamma: gamma, beta: beta)
            }
        }
    }

    func testFusedOpsMatchTheUnfusedChainsWithTheSameMasks() {
        let x = randomVariable([4, 6, 8], seed: 10)
        let weight = randomVariable([12, 8], seed: 11)
        let bias = randomVariable([12], seed: 12)
        let gamma = randomVariable([8], seed: 13), beta = randomVariable([8], seed: 14)
        let sub = randomVariable([4, 6, 8], seed: 15)

        var generator = SeededGenerator(seed: 16)
        let fused = linearActivation(x, weight: weight, bias: bias, activation: .relu, dropout: 0.2, generator: &generator)
        let fusedNorm = residualLayerNorm(x, adding: sub, dropout: 0.2, generator: &generator, gamma: gamma, beta: beta)
        (fused.sum() + (fusedNorm * fusedNorm).sum()).backward()
        let fusedGradients = [x, weight, bias, gamma, beta, sub].map { $0.grad! }
        let fusedState = generator

        for v in [x, weight, bias, gamma, beta, sub] { v.zeroGrad() }
        generator = SeededGenerator(seed: 16)
        let plain = dropout(linear(x, weight: weight, bias: bias).relu(), probability: 0.2, generator: &generator)
        let plainNorm = layerNorm(x + dropout(sub, probability: 0.2, generator: &generator), gamma: gamma, beta: beta)
        (plain.sum() + (plainNorm * plainNorm).sum()).backward()
        XCTAssertEqual(generator, fusedState, "the fused ops draw as many seeds as the chains")

        for (a, b) in zip(fused.value.data + fusedNorm.value.data, plain.value.data + plainNorm.value.data) {
            XCTAssertEqual(a, b, accuracy: 1e-5)
        }
        for (index, (a, b)) in zip(fusedGradients, [x, weight, bias, gamma, beta, sub].map { $0.grad! }).enumerated() {
            for i in 0..<a.count {
                XCTAssertEqual(a[flat: i], b[flat: i], accuracy: 1e-4 * max(1, abs(b[flat: i])), "gradient \(index) element \(i)")
            }
        }
    }

    /// TD-DETR's two fused ops against the chains of element-wise ops they replace, bit for bit: values and every
    /// gradient, with and without dropout, both mix orders, on tensors large enough for several parallel chunks
    /// and mask blocks.
    func testTemporalDynamicsOpsGiveTheUnfusedChainsBits() {
        let shape = [3, 40, 300]
        let weights = randomVariable(shape, seed: 21, requiresGrad: false)
        for p: Float in [0, 0.3] {
            for order in [TemporalDynamicsKernels.MixOrder.weightedResidual, .weightedVideo] {
                // Each input feeds one op, so each gradient arrives whole and the two graphs' orders of accumulation
                // do not matter.
                let leaves = [randomVariable(shape, seed: 22), randomVariable(shape, seed: 23), randomVariable(shape, seed: 24),
                              randomVariable(shape, seed: 25), randomVariable([1, 1, 300], seed: 26)]
                let (video, attended, dynamics, tokens, start) = (leaves[0], leaves[1], leaves[2], leaves[3], leaves[4])
                let beta: Float = 0.35

                var generator = SeededGenerator(seed: 27)
                let differences = temporalDifferences(tokens, start: start)
                let mixed = dynamicsMix(video: video, attended: attended, dynamics: dynamics, beta: beta, order: order,
                                        dropout: p, generator: &generator)
                ((differences * weights).sum() + (mixed * mixed).sum()).backward()
                let fusedValues = differences.value.data + mixed.value.data
                let fusedGradients = leaves.map { $0.grad!.data }
                let fusedState = generator

                for leaf in leaves { leaf.zeroGrad() }
                generator = SeededGenerator(seed: 27)
                let zeros = Variable(Tensor(zeros: [3, 1, 300]))
                let previous = concat([zeros + start, tokens.sliced(axis: 1, 0..<39)], axis: 1)
                let plainDifferences = tokens - previous
                let dropped = dropout(attended, probability: p, generator: &generator)
                let plainMixed = order == .weightedResidual
                    ? beta * (video + dropped) + (1 - beta) * dynamics
                    : beta * video + (1 - beta) * dynamics + dropped
                ((plainDifferences * weights).sum() + (plainMixed * plainMixed).sum()).backward()
                XCTAssertEqual(generator, fusedState, "p \(p): the fused mix draws as many seeds as the chain")

                XCTAssertEqual(fusedValues, plainDifferences.value.data + plainMixed.value.data, "p \(p), \(order): values")
                for (index, leaf) in leaves.enumerated() {
                    XCTAssertEqual(fusedGradients[index], leaf.grad!.data, "p \(p), \(order): gradient of input \(index)")
                }
            }
        }
    }
}
