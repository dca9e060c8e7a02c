import NN
import Tensor
import XCTest

final class SharedSlopePReLUTests: XCTestCase {
    func testSharedSlopePReLUMatchesPerElementPReLUAndFiniteDifferences() {
        let x = randomVariable([3, 4, 5], seed: 31, awayFromZero: 0.05)
        let slope = Variable(Tensor(shape: [1], data: [0.25]), requiresGrad: true)
        XCTAssertEqual(sharedSlopePReLU(x, slope: slope).value, prelu(x, slope: slope).value)
        GradientChecker()
            .check([x, slope]) { sharedSlopePReLU(x, slope: slope) }
    }

    func testSharedSlopePReLUSlopeGradientSpansManyChunks() {
        // More elements than one parallel chunk, so the chunked slope reduction is exercised.
        let count = Parallelism.elementwiseGrain * 2 + 17
        let x = Variable(Tensor(shape: [count]) { out in
            for i in 0..<count { out[i] = Float(i % 7) - 3.5 }
        }, requiresGrad: true)
        let slope = Variable(Tensor(shape: [1], data: [0.1]), requiresGrad: true)
        sharedSlopePReLU(x, slope: slope).sum().backward()
        let reference = Variable(Tensor(shape: [1], data: [0.1]), requiresGrad: true)
        prelu(Variable(x.value), slope: reference).sum().backward()
        XCTAssertEqual(slope.grad!.scalar, reference.grad!.scalar, accuracy: 1e-2)
        // d/d slope of sum(prelu(x)) is the sum of the negative inputs.
        let negativeSum = (0..<count).reduce(0.0) { $0 + min(Double($1 % 7) - 3.5, 0) }
        XCTAssertEqual(Double(slope.grad!.scalar), negativeSum, accuracy: 1e-2)
    }

    /// The fused `dropout(prelu(x))` draws the seed `dropout` would and gives the unfused chain's values and gradients.
    func testFusedDropoutIsTheUnfusedChain() {
        let x = randomVariable([4, 6, 33], seed: 32, awayFromZero: 0.05)
        let slope = Variable(Tensor(shape: [1], data: [0.25]), requiresGrad: true)
        let upstream = randomVariable([4, 6, 33], seed: 33).value
        var fusedGenerator = SeededGenerator(seed: 9), unfusedGenerator = SeededGenerator(seed: 9)
        let fused = sharedSlopePReLU(x, slope: slope, dropout: 0.3, generator: &fusedGenerator)
        fused.backward(gradient: upstream)
        let (fusedInput, fusedSlope) = (x.grad!, slope.grad!)
        x.zeroGrad()
        slope.zeroGrad()
        let unfused = dropout(sharedSlopePReLU(x, slope: slope), probability: 0.3, generator: &unfusedGenerator)
        unfused.backward(gradient: upstream)
        XCTAssertEqual(fused.value, unfused.value)
        XCTAssertEqual(fusedInput, x.grad!)
        XCTAssertEqual(fusedSlope.scalar, slope.grad!.scalar, accuracy: 1e-6)
        XCTAssertEqual(fusedGenerator, unfusedGenerator, "one seed drawn, as dropout draws it")
        XCTAssertTrue(fused.value.data.contains(0) && fused.value.data.contains { $0 != 0 }, "the mask drops some and keeps some")
    }

    /// The AVX-512 blocks give the portable loops' bits: values, input gradient and slope gradient, with and without
    /// dropout, over lengths that end mid-vector, several blocks and several parallel chunks, with zeros, negative zeros
    /// and a NaN among the inputs.
    func testTheAVX512BlocksGiveThePortableBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        defer { VectorKernels.enabled = true }
        for count in [1, 7, 8, 15, 16, 23, 4099, Parallelism.elementwiseGrain * 2 + 13] {
            var generator = SeededGenerator(seed: UInt64(count))
            let input = Tensor(shape: [count]) { out in
                for i in 0..<count { out[i] = i % 11 == 3 ? 0 : i % 11 == 5 ? -0.0 : generator.nextUniform(in: -2, 2) }
                if count > 20 { out[20] = .nan }
            }
            let upstream = Tensor(shape: [count]) { out in for i in 0..<count { out[i] = generator.nextUniform(in: -1, 1) } }
            for p: Float in [0, 0.3] {
                func run() -> [[UInt32]] {
                    let x = Variable(input, requiresGrad: true)
                    let slope = Variable(Tensor(shape: [1], data: [0.25]), requiresGrad: true)
                    var dropoutGenerator = SeededGenerator(seed: 5)
                    let y = sharedSlopePReLU(x, slope: slope, dropout: p, generator: &dropoutGenerator)
                    y.backward(gradient: upstream)
                    return [y.value.data.map(\.bitPattern), x.grad!.data.map(\.bitPattern), slope.grad!.data.map(\.bitPattern)]
                }
                VectorKernels.enabled = false
                let portable = run()
                VectorKernels.enabled = true
                let vector = run()
                for (k, name) in ["values", "input gradient", "slope gradient"].enumerated() {
                    let differing = zip(vector[k], portable[k]).filter { $0 != $1 }.count
                    XCTAssertEqual(differing, 0, "\(count) elements, p \(p): \(name) elements whose bits differ")
                }
            }
        }
    }
}
