import Tensor
import XCTest

final class DeterminismTests: XCTestCase {
    func testDropoutMaskKeepsTheRightShareAndScalesSurvivors() {
        let mask = DropoutMask.make(shape: [100_001], probability: 0.3, seed: 5)
        let kept = mask.data.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 100_001, 0.7, accuracy: 0.01)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
    }

    /// The mask kernel a CPU with AVX-512 runs gives the portable kernel's bits: ranges that start and end
    /// mid-hash and mid-vector, probabilities from 0 to nearly 1, a counter past 2^32.
    func testTheAVX512MaskKernelGivesThePortableBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        for (start, count) in [(0, 32), (3, 77), (5, 33), (13, 4096), (1 << 40, 333), (7, 1)] {
            for p in [Float(0), 0.1, 0.5, 0.99999] {
                var portable = [Float](repeating: -1, count: count), fast = portable
                portable.withUnsafeMutableBufferPointer {
                    DropoutMask.portableFill($0.baseAddress!, range: start..<(start + count), probability: p, seed: 42)
                }
                fast.withUnsafeMutableBufferPointer {
                    DropoutMask.fill($0.baseAddress!, range: start..<(start + count), probability: p, seed: 42)
                }
                XCTAssertEqual(fast.map(\.bitPattern), portable.map(\.bitPattern), "start \(start), count \(count), p \(p)")
                if p == 0.5 && count > 64 {
                    let kept = portable.filter { $0 != 0 }.count
                    XCTAssert(abs(Double(kept) / Double(count) - 0.5) < 0.15, "p 0.5 kept \(kept) of \(count)")
                }
            }
        }
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
