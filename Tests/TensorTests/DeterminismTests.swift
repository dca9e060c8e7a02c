import Tensor
import XCTest

final class DeterminismTests: XCTestCase {
    func testDropoutMaskKeepsTheRightShareAndScalesSurvivors() {
        let mask = DropoutMask.make(shape: [100_001], probability: 0.3, seed: 5)
        let kept = mask.data.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 100_001, 0.7, accuracy: 0.01)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
    }

    func testKernelsGiveIdenticalBitsWithOneOrTwoThreads() {
        let previous = Parallelism.threadCount
        defer { Parallelism.setThreadCount(previous) }
        var generator = SeededGenerator(seed: 9)
        let q = Tensor(shape: [4, 7, 16]) { out in for i in 0..<out.count { out[i] = generator.nextUniform() } }
        func run() -> [Tensor] {
            let (attended, saved) = AttentionKernel.forward(query: q, key: q, value: q, heads: 4, keyIsPadding: nil,
                                                            dropout: 0.2, dropoutSeed: 77)
            let grads = AttentionKernel.backward(outputGradient: attended, query: q, key: q, value: q, heads: 4, saved: saved)
            return [attended, grads.query, grads.key, grads.value,
                    DropoutMask.make(shape: [200_000], probability: 0.1, seed: 3),
                    Softmax.forward(q, axis: 2)]
        }
        Parallelism.setThreadCount(1)
        let single = run()
        Parallelism.setThreadCount(2)
        let double = run()
        XCTAssertEqual(single, double)
    }
}
