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
}
