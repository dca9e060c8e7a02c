import GradientChecking
import NN
import XCTest

/// `GradientCheck` (its step and tolerances, derived from Float32 rounding, are stated there) reporting
/// through XCTest: each failing input is one test failure at the caller's line.
struct GradientChecker {
    var standard = GradientCheck()

    func check(_ inputs: [Variable], file: StaticString = #filePath, line: UInt = #line, _ function: () -> Variable) {
        for message in standard.failures(inputs, function) { XCTFail(message, file: file, line: line) }
    }
}

/// A trainable variable with uniform values in `[-scale, scale]`, optionally kept at least
/// `awayFromZero` from 0 (for kinks such as ReLU and abs).
func randomVariable(_ shape: [Int], seed: UInt64, scale: Float = 1, awayFromZero: Float = 0,
                    requiresGrad: Bool = true) -> Variable {
    var generator = SeededGenerator(seed: seed)
    let values = Tensor(shape: shape) { out in
        for i in 0..<out.count {
            var v = generator.nextUniform(in: -scale, scale)
            if abs(v) < awayFromZero { v = v < 0 ? v - awayFromZero : v + awayFromZero }
            out[i] = v
        }
    }
    return Variable(values, requiresGrad: requiresGrad)
}
