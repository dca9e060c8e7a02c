import NN
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
}
