import Foundation
import NN
import Tensor
import XCTest

final class OptimizerTests: XCTestCase {
    func testAdamWMatchesHandComputedFirstSteps() {
        let p = Variable(Tensor(shape: [2], data: [1, -2]), requiresGrad: true)
        let optimizer = AdamW(namedParameters: [(name: "p", parameter: p)], learningRate: 0.1, weightDecay: 0.5)
        p.grad = Tensor(shape: [2], data: [0.5, -1])
        optimizer.update()
        // Step 1: m-hat = g, v-hat = g^2, so the Adam step is lr * sign(g) (up to eps); decay first.
        XCTAssertEqual(p.value[flat: 0], 1 * (1 - 0.05) - 0.1, accuracy: 1e-6)
        XCTAssertEqual(p.value[flat: 1], -2 * (1 - 0.05) + 0.1, accuracy: 1e-6)
        p.grad = Tensor(shape: [2], data: [0.5, 0])
        let before = p.value
        optimizer.update()
        // Step 2, element 1: m = 0.9 * 0.1 * -1 ... computed in Double.
        let m = 0.9 * 0.1 * -1.0, v = 0.999 * 0.001 * 1.0
        let expected = Double(before[flat: 1]) * 0.95 - 0.1 * (m / (1 - 0.81)) / ((v / (1 - 0.998001)).squareRoot() + 1e-8)
        XCTAssertEqual(Double(p.value[flat: 1]), expected, accuracy: 1e-5)
        XCTAssertEqual(optimizer.step, 2)
    }

    /// Over a parameter long enough for the vector body and a tail, three steps give the bits of the update written
    /// element by element in Float (the AVX-512 kernel, where the CPU has it, keeps the scalar operations' order).
    func testAdamWGivesTheScalarFormulasBits() {
        var generator = SeededGenerator(seed: 5)
        let count = 1037
        let start = (0..<count).map { _ in generator.nextUniform(in: -1, 1) }
        let p = Variable(Tensor(shape: [count], data: start), requiresGrad: true)
        let optimizer = AdamW(namedParameters: [(name: "p", parameter: p)], learningRate: 0.003, weightDecay: 0.01)
        var (expected, m, v) = (start, [Float](repeating: 0, count: count), [Float](repeating: 0, count: count))
        for step in 1...3 {
            let g = (0..<count).map { _ in generator.nextUniform(in: -2, 2) }
            p.grad = Tensor(shape: [count], data: g)
            optimizer.update()
            let (b1, b2, lr, eps): (Float, Float, Float, Float) = (0.9, 0.999, 0.003, 1e-8)
            let correction1 = 1 - Foundation.pow(b1, Float(step)), correction2 = 1 - Foundation.pow(b2, Float(step))
            let decay = 1 - lr * 0.01
            for i in 0..<count {
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                let mHat = m[i] / correction1, vHat = v[i] / correction2
                expected[i] = expected[i] * decay - lr * mHat / (vHat.squareRoot() + eps)
            }
            XCTAssertEqual(p.value.data.map(\.bitPattern), expected.map(\.bitPattern), "step \(step)")
        }
    }

    func testAdamWStateRoundTripsAsPlainArrays() {
        let p = Variable(Tensor(shape: [3], data: [1, 2, 3]), requiresGrad: true)
        let optimizer = AdamW(namedParameters: [(name: "w", parameter: p)], learningRate: 0.01)
        p.grad = Tensor(shape: [3], data: [0.1, 0.2, 0.3])
        optimizer.update()
        let state = optimizer.exportState()
        let q = Variable(p.value, requiresGrad: true)
        let restored = AdamW(namedParameters: [(name: "w", parameter: q)], learningRate: 0.01)
        restored.importState(state)
        p.grad = Tensor(shape: [3], data: [-0.3, 0.1, 0.5])
        q.grad = p.grad
        optimizer.update()
        restored.update()
        XCTAssertEqual(p.value, q.value)
        XCTAssertEqual(restored.exportState(), optimizer.exportState())
    }

    func testClipByGlobalNormScalesAllGradientsTogether() {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true)
        let b = Variable(Tensor(zeros: [1]), requiresGrad: true)
        a.grad = Tensor(shape: [2], data: [3, 0])
        b.grad = Tensor(shape: [1], data: [4])
        let norm = GradientClipping.clipByGlobalNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad![flat: 0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad![flat: 0], 0.8, accuracy: 1e-5)
    }

    func testClipByGlobalNormGivesTheSameBitsOnOneAndTwoThreadsAndAffinesScaling() {
        // A gradient of several sum blocks with a ragged tail, a tiny one, and one of exactly one block; a -0 in each.
        let shapes = [[70_001], [3], [128, 256]]
        let gradients: [Tensor] = shapes.enumerated().map { index, shape in
            var generator = SeededGenerator(seed: UInt64(11 + index))
            return Tensor(shape: shape) { out in
                for i in 0..<out.count { out[i] = generator.nextUniform(in: -1, 1) }
                out[out.count / 2] = -0.0
            }
        }
        func clipped(threads: Int) -> (norm: Float, gradients: [Tensor]) {
            let previous = Parallelism.threadCount
            defer { Parallelism.setThreadCount(previous) }
            Parallelism.setThreadCount(threads)
            let parameters = gradients.map { gradient -> Variable in
                let p = Variable(Tensor(zeros: gradient.shape), requiresGrad: true)
                p.grad = gradient
                return p
            }
            let norm = GradientClipping.clipByGlobalNorm(parameters, maxNorm: 0.5)
            return (norm, parameters.map { $0.grad! })
        }
        let single = clipped(threads: 1), double = clipped(threads: 2)
        XCTAssertEqual(single.norm.bitPattern, double.norm.bitPattern)
        var squares = 0.0
        for gradient in gradients { for v in gradient.data { squares += Double(v) * Double(v) } }
        XCTAssertEqual(Double(single.norm), squares.squareRoot(), accuracy: 1e-6 * squares.squareRoot())
        let coefficient = 0.5 / (single.norm + 1e-6)
        for (index, gradient) in gradients.enumerated() {
            let expected = Elementwise.affine(gradient, scale: coefficient, shift: 0).data.map(\.bitPattern)
            XCTAssertEqual(single.gradients[index].data.map(\.bitPattern), expected, "gradient \(index)")
            XCTAssertEqual(double.gradients[index].data.map(\.bitPattern), expected, "gradient \(index), two threads")
        }
        // The clipped tensors are new storage: the caller's tensors are untouched.
        XCTAssertEqual(gradients[1].data[1].bitPattern, (-0.0 as Float).bitPattern)
    }

    /// Clipping applied by the optimizer as it reads each gradient (`update(gradientScale:)` with `globalNormScale`'s
    /// factor) gives the bits of clipping the gradients in place and then stepping: parameters and both moments over
    /// three steps, clipped and not, on the AVX-512 kernel and the portable loop; the gradients are left unscaled.
    func testAdamWWithAGradientScaleGivesClippingThenAdamWsBits() {
        defer { VectorKernels.enabled = GEMM.avx512Available }
        let shapes = [[1037], [3], [40, 17]]
        for vector in GEMM.avx512Available ? [true, false] : [false] {
            VectorKernels.enabled = vector
            for maxNorm: Float in [0.5, 1e6] {
                var generator = SeededGenerator(seed: 21)
                let starts = shapes.map { shape in Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -1, 1) } } }
                let separate = starts.map { Variable($0, requiresGrad: true) }, fused = starts.map { Variable($0, requiresGrad: true) }
                let separateOptimizer = AdamW(namedParameters: separate.enumerated().map { ("p\($0.offset)", $0.element) },
                                              learningRate: 0.003, weightDecay: 0.01)
                let fusedOptimizer = AdamW(namedParameters: fused.enumerated().map { ("p\($0.offset)", $0.element) },
                                           learningRate: 0.003, weightDecay: 0.01)
                for step in 1...3 {
                    let gradients = shapes.map { shape in
                        Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -2, 2) } }
                    }
                    for (p, g) in zip(separate, gradients) { p.grad = g }
                    for (p, g) in zip(fused, gradients) { p.grad = g }
                    let norm = GradientClipping.clipByGlobalNorm(separate, maxNorm: maxNorm)
                    separateOptimizer.update()
                    let (fusedNorm, scale) = GradientClipping.globalNormScale(fused, maxNorm: maxNorm)
                    fusedOptimizer.update(gradientScale: scale)
                    XCTAssertEqual(fusedNorm.bitPattern, norm.bitPattern)
                    XCTAssertEqual(scale == nil, maxNorm > norm, "vector \(vector), max norm \(maxNorm): clipped when over")
                    let label = "vector \(vector), max norm \(maxNorm), step \(step)"
                    for (a, b) in zip(separate, fused) {
                        XCTAssertEqual(a.value.data.map(\.bitPattern), b.value.data.map(\.bitPattern), "\(label): parameters")
                    }
                    XCTAssertEqual(fusedOptimizer.exportState(), separateOptimizer.exportState(), "\(label): moments")
                    XCTAssertEqual(fused.map { $0.grad! }, gradients, "\(label): the gradients are not scaled in place")
                }
            }
        }
    }

    func testStepScheduleDecaysEveryStepSizeEpochs() {
        let schedule = StepLRSchedule(baseLearningRate: 2e-4, stepSize: 30, gamma: 0.1)
        XCTAssertEqual(schedule.learningRate(epoch: 29), 2e-4, accuracy: 1e-10)
        XCTAssertEqual(schedule.learningRate(epoch: 30), 2e-5, accuracy: 1e-10)
        XCTAssertEqual(schedule.learningRate(epoch: 65), 2e-6, accuracy: 1e-11)
    }

    func testGeneratorStateRoundTripContinuesTheStream() {
        var generator = SeededGenerator(seed: 3)
        _ = generator.next()
        var restored = SeededGenerator(state: generator.state)
        XCTAssertEqual((0..<5).map { _ in generator.next() }, (0..<5).map { _ in restored.next() })
    }
}
