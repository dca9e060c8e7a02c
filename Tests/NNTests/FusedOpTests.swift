import NN
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
}
