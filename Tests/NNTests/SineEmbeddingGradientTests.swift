import NN
import XCTest

final class SineEmbeddingGradientTests: XCTestCase {
    func testSineEmbeddingMatchesClosedFormInterleaving() {
        let x = Variable(Tensor(shape: [1, 2], data: [0.25, 0.5]))
        let y = sineEmbedding(x, featuresPerCoordinate: 4, temperature: 100, scale: 2)
        XCTAssertEqual(y.shape, [1, 8])
        // Coordinate 0 (0.25 * 2 = 0.5): sin(0.5), cos(0.5), sin(0.5 / 10), cos(0.5 / 10).
        let expected: [Float] = [sin(0.5), cos(0.5), sin(0.05), cos(0.05), sin(1), cos(1), sin(0.1), cos(0.1)]
        for (a, b) in zip(y.value.data, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testSineEmbeddingGradientMatchesFiniteDifferences() {
        // Anchors live in (0, 1); the default 2 pi scale and a small feature count keep angles moderate.
        var generator = SeededGenerator(seed: 21)
        let values = Tensor(shape: [2, 3, 2]) { out in
            for i in 0..<out.count { out[i] = generator.nextUniform(in: 0.05, 0.95) }
        }
        let x = Variable(values, requiresGrad: true)
        GradientChecker()
            .check([x]) { sineEmbedding(x, featuresPerCoordinate: 6) }
    }
}
