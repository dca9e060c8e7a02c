import NN
import XCTest

/// Finite-difference checks of every op's backward, on odd shapes (length 1, widths that are not
/// multiples of the SIMD width) and with masks.
final class OpGradientTests: XCTestCase {
    let checker = GradientChecker()

    func testBroadcastArithmeticGradients() {
        let a = randomVariable([2, 3, 5], seed: 1)
        let b = randomVariable([5], seed: 2)
        let c = randomVariable([2, 1, 5], seed: 3)
        let positive = Variable(randomVariable([3, 1], seed: 4).value.reshaped([3, 1]), requiresGrad: true)
        positive.assign(Tensor(shape: [3, 1], data: [1.3, 0.8, 1.7]))
        checker.check([a, b, c, positive]) {
            ((a + b) * c - a / positive + 2 * b - (1 - c)) / 3 + (a + 0.5) * -a
        }
    }

    func testUnaryElementwiseGradients() {
        let x = randomVariable([3, 7], seed: 5, scale: 1, awayFromZero: 0.1)
        let positive = Variable(Tensor(shape: [3, 7]) { out in for i in 0..<21 { out[i] = 0.5 + Float(i) * 0.07 } },
                                requiresGrad: true)
        checker.check([x, positive]) {
            x.exp() + positive.log() + positive.sqrt() + x.abs() + x.sigmoid() + x.tanh() + x.clamped(min: -0.55, max: 0.6)
        }
    }

    func testMaximumMinimumGradients() {
        let a = randomVariable([4, 3], seed: 6)
        let b = Variable(Elementwise.affine(a.value, scale: -1, shift: 0.05), requiresGrad: true)
        // Each c_j in the middle of the widest gap between column j's values of a, so that no step of the
        // check crosses the kink of minimum(a, c).
        let c = Variable(Tensor(shape: [3]) { out in
            for j in 0..<3 {
                let values: [Float] = [-1, 1] + (0..<4).map { a.value[$0, j] }
                let column = values.sorted()
                let widths: [Float] = (1..<column.count).map { column[$0] - column[$0 - 1] }
                let gap = widths.indices.max { widths[$0] < widths[$1] }!
                out[j] = (column[gap] + column[gap + 1]) / 2
            }
        }, requiresGrad: true)
        checker.check([a, b, c]) { maximum(a, b) * 2 + minimum(a, c) }
    }

    func testReductionGradients() {
        let x = randomVariable([2, 3, 4], seed: 8)
        checker.check([x]) { x.sum(axis: 1) * x.mean(axis: 1) }
        checker.check([x]) { x.sum(axis: -1, keepingDimension: true) + x.mean(axis: 0, keepingDimension: true) }
        checker.check([x]) { x.sum() * x.mean() }
        checker.check([x]) { x.max(axis: 2) }
    }

    func testLinearGradientsOnOddShapes() {
        for (batchShape, inWidth, outWidth) in [([3, 1], 7, 5), ([1], 1, 1), ([2, 3], 17, 9)] {
            let x = randomVariable(batchShape + [inWidth], seed: 9)
            let w = randomVariable([outWidth, inWidth], seed: 10)
            let b = randomVariable([outWidth], seed: 11)
            checker.check([x, w, b]) { linear(x, weight: w, bias: b) }
            checker.check([x, w]) { linear(x, weight: w, bias: nil) }
        }
    }

    func testMatmulGradientsWithTransposes() {
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let a = randomVariable(transposeA ? [5, 3] : [3, 5], seed: 12)
                let b = randomVariable(transposeB ? [4, 5] : [5, 4], seed: 13)
                checker.check([a, b]) { matmul(a, b, transposeA: transposeA, transposeB: transposeB) }
                let ba = randomVariable(transposeA ? [2, 5, 3] : [2, 3, 5], seed: 14)
                let bb = randomVariable(transposeB ? [2, 4, 5] : [2, 5, 4], seed: 15)
                checker.check([ba, bb]) { matmul(ba, bb, transposeA: transposeA, transposeB: transposeB) }
            }
        }
        let folded = randomVariable([2, 3, 5], seed: 16)
        let shared = randomVariable([4, 5], seed: 17)
        checker.check([folded, shared]) { matmul(folded, shared, transposeB: true) }
    }

    func testLayerNormGradients() {
        for shape in [[2, 3, 17], [1, 1, 5]] {
            let x = randomVariable(shape, seed: 18, scale: 2)
            let gamma = randomVariable([shape[2]], seed: 19)
            let beta = randomVariable([shape[2]], seed: 20)
            checker.check([x, gamma, beta]) { layerNorm(x, gamma: gamma, beta: beta) }
        }
    }

    func testSoftmaxAndLogSoftmaxGradients() {
        let x = randomVariable([2, 5, 3], seed: 21, scale: 2)
        checker.check([x]) { x.softmax(axis: 1) }
        checker.check([x]) { x.softmax() }
        checker.check([x]) { x.logSoftmax(axis: 1) }
        checker.check([x]) { x.logSoftmax(axis: -1) }
    }

    func testAttentionGradientsWithPaddingMaskAndOddLengths() {
        for (queryLength, keyLength) in [(3, 5), (1, 1), (4, 2)] {
            let (batch, width, heads) = (2, 12, 3)
            let q = randomVariable([batch, queryLength, width], seed: 22)
            let k = randomVariable([batch, keyLength, width], seed: 23)
            let v = randomVariable([batch, keyLength, width], seed: 24)
            var flags = [Bool](repeating: false, count: batch * keyLength)
            if keyLength > 1 { flags[batch * keyLength - 1] = true }
            let mask = KeyPaddingMask(batch: batch, length: keyLength, isPadding: flags)
            checker.check([q, k, v]) {
                var generator = SeededGenerator(seed: 1)
                return scaledDotProductAttention(query: q, key: k, value: v, heads: heads, keyPaddingMask: mask,
                                                 generator: &generator)
            }
        }
    }

    func testAttentionGradientsWithDropoutOnWeights() {
        let q = randomVariable([2, 3, 8], seed: 25)
        let k = randomVariable([2, 6, 8], seed: 26)
        let v = randomVariable([2, 6, 8], seed: 27)
        checker.check([q, k, v]) {
            var generator = SeededGenerator(seed: 99)
            return scaledDotProductAttention(query: q, key: k, value: v, heads: 2, dropout: 0.3, generator: &generator)
        }
    }

    func testFullyMaskedQueryGivesZeroOutputAndNoGradient() {
        let q = randomVariable([1, 2, 4], seed: 28)
        let k = randomVariable([1, 3, 4], seed: 29)
        let v = randomVariable([1, 3, 4], seed: 30)
        var generator = SeededGenerator(seed: 1)
        let mask = KeyPaddingMask(batch: 1, length: 3, isPadding: [true, true, true])
        let out = scaledDotProductAttention(query: q, key: k, value: v, heads: 2, keyPaddingMask: mask, generator: &generator)
        XCTAssertEqual(out.value.data, [Float](repeating: 0, count: 8))
        out.sum().backward()
        XCTAssertEqual(v.grad?.data ?? [], [Float](repeating: 0, count: 12))
    }

    func testActivationGradients() {
        let x = randomVariable([3, 5], seed: 31, scale: 2, awayFromZero: 0.05)
        let slope = randomVariable([5], seed: 32)
        let shared = randomVariable([1], seed: 33)
        checker.check([x]) { x.relu() }
        checker.check([x]) { x.gelu() }
        checker.check([x, slope]) { prelu(x, slope: slope) }
        checker.check([x, shared]) { prelu(x, slope: shared) }
    }

    func testDropoutGradientUsesTheSameMask() {
        let x = randomVariable([4, 9], seed: 34)
        checker.check([x]) {
            var generator = SeededGenerator(seed: 7)
            return dropout(x, probability: 0.4, generator: &generator)
        }
    }

    func testShapeOpGradients() {
        let a = randomVariable([2, 3, 4], seed: 35)
        let b = randomVariable([2, 1, 4], seed: 36)
        checker.check([a, b]) { concat([a, b, a], axis: 1) }
        checker.check([a]) { a.sliced(axis: 2, 1..<3) + a.sliced(axis: -1, 0..<2) }
        checker.check([a]) { a.padded(axis: 1, before: 2, after: 1, value: 0.5) }
        checker.check([a]) { a.transposedLastTwo().reshaped([2, -1]) }
    }

    func testGatherScatterAndEmbeddingGradients() {
        let x = randomVariable([2, 5, 3], seed: 37)
        let indices = [4, 0, 4, 1, 2, 3]
        checker.check([x]) { gatherTime(x, indices: indices, count: 3) }
        let source = randomVariable([2, 3, 3], seed: 38)
        checker.check([source]) { scatterAddTime(source, indices: indices, length: 5) }
        let table = randomVariable([6, 4], seed: 39)
        checker.check([table]) { embeddingLookup(table, indices: [5, 0, 5, 2], indexShape: [2, 2]) }
    }

    func testConv1DGradients() {
        for (kernel, stride, padding, length) in [(3, 2, 1, 7), (1, 1, 0, 1), (4, 1, 2, 3)] {
            let x = randomVariable([2, length, 3], seed: 40)
            let w = randomVariable([5, kernel, 3], seed: 41)
            let b = randomVariable([5], seed: 42)
            checker.check([x, w, b]) { conv1d(x, weight: w, bias: b, stride: stride, padding: padding) }
        }
    }

    func testInterpolationGradientsToFeaturesAndPositions() {
        let x = randomVariable([2, 4, 3], seed: 43)
        // Positions away from integers (the derivative jumps there) and partly outside [0, L - 1].
        let positions = Variable(Tensor(shape: [2, 3], data: [0.3, 2.45, -0.6, 1.7, 3.25, 0.55]), requiresGrad: true)
        checker.check([x, positions]) { interpolate(x, at: positions) }
    }

    func testLossGradients() {
        let pred = randomVariable([3, 4], seed: 44)
        let target = randomVariable([3, 4], seed: 45, requiresGrad: false).value
        // Keep |pred - target| away from 0 and from the smooth-L1 threshold.
        let separated = Variable(Tensor(shape: [3, 4]) { out in
            for i in 0..<12 {
                let d = pred.value[flat: i] - target[flat: i]
                out[i] = target[flat: i] + (abs(d) < 0.1 ? 0.3 : (abs(abs(d) - 0.5) < 0.05 ? d + 0.2 : d))
            }
        }, requiresGrad: true)
        checker.check([separated]) { l1Loss(separated, target) }
        checker.check([separated]) { l1Loss(separated, target, reduction: .sum) }
        checker.check([separated]) { smoothL1Loss(separated, target, beta: 0.5) }
        checker.check([separated]) { smoothL1Loss(separated, target, beta: 0.5, reduction: .sumOver(2)) }

        let logits = randomVariable([5, 3], seed: 46, scale: 2)
        checker.check([logits]) { crossEntropyLoss(logits, targets: [0, 2, 1, 2, 0]) }
        checker.check([logits]) { crossEntropyLoss(logits, targets: [0, 2, 1, 2, 0], classWeights: [1, 0.1, 2]) }

        let binaryTargets = Tensor(shape: [5, 3], data: [1, 0, 0, 1, 1, 0, 0.3, 0, 1, 0, 0, 1, 1, 1, 0])
        checker.check([logits]) { binaryCrossEntropyWithLogits(logits, binaryTargets) }
        checker.check([logits]) { sigmoidFocalLoss(logits, binaryTargets) }
        checker.check([logits]) { sigmoidFocalLoss(logits, binaryTargets, alpha: -1, gamma: 1.5, reduction: .sum) }

        let positives = Tensor(shape: [5, 3], data: [1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0])
        let valid = Tensor(shape: [5, 3], data: [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0])
        checker.check([logits]) { softmaxContrastiveLoss(logits, positives: positives) }
        checker.check([logits]) { softmaxContrastiveLoss(logits, positives: positives, validColumns: valid) }
    }

    func testGradientsAccumulateAcrossUsesAndBackwardCalls() {
        let x = Variable(Tensor(shape: [2], data: [1, 2]), requiresGrad: true)
        (x * x + x).sum().backward()
        XCTAssertEqual(x.grad?.data, [3, 5])
        (x * 2).sum().backward()
        XCTAssertEqual(x.grad?.data, [5, 7])
        x.zeroGrad()
        XCTAssertNil(x.grad)
    }

    func testNoGradientModeRecordsNothing() {
        let x = Variable(Tensor(shape: [2], data: [1, 2]), requiresGrad: true)
        let y = GradientMode.withoutGradients { (x * x).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(y.scalar, 5)
        XCTAssertTrue((x * x).sum().requiresGrad)
    }
}
