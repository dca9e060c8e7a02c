import NN
import XCTest

/// Central finite differences against the analytic backward pass.
///
/// The checked function's output is contracted with fixed random weights `R` into
/// `L = sum(out * R)`, accumulated in Double; the numeric gradient of each input element is
/// `(L(x + eps) - L(x - eps)) / 2 eps`. Kernels run in Float32, so the difference is limited by
/// Float32 rounding of the forward pass (about 1e-6 relative per output) divided by `eps`; with
/// `eps = 1e-2` and inputs of order 1 that is well below the tolerances used here. An element passes
/// when `|analytic - numeric| <= absoluteTolerance + relativeTolerance * max(|analytic|, |numeric|)`.
struct GradientChecker {
    var epsilon: Float = 1e-2
    var absoluteTolerance: Float = 2e-3
    var relativeTolerance: Float = 1e-2

    func check(_ inputs: [Variable], file: StaticString = #filePath, line: UInt = #line,
               _ function: () -> Variable) {
        for input in inputs { input.zeroGrad() }
        let probe = function()
        var weightGenerator = SeededGenerator(seed: 12345)
        let weights = Initialization.uniform(shape: probe.shape, bound: 1, generator: &weightGenerator)
        let loss = (probe * Variable(weights)).sum()
        loss.backward()

        func contracted() -> Double {
            GradientMode.withoutGradients {
                let out = function()
                var total: Double = 0
                for i in 0..<out.count { total += Double(out.value[flat: i]) * Double(weights[flat: i]) }
                return total
            }
        }

        for (inputIndex, input) in inputs.enumerated() {
            let analytic = input.grad ?? Tensor(zeros: input.shape)
            let original = input.value
            var worst: (Float, Int, Float, Float) = (0, -1, 0, 0)
            for i in 0..<original.count {
                var plus = original
                plus[flat: i] += epsilon
                input.assign(plus)
                let lossPlus = contracted()
                var minus = original
                minus[flat: i] -= epsilon
                input.assign(minus)
                let lossMinus = contracted()
                input.assign(original)
                let numeric = Float((lossPlus - lossMinus) / (2 * Double(epsilon)))
                let a = analytic[flat: i]
                let excess = abs(a - numeric) - (absoluteTolerance + relativeTolerance * max(abs(a), abs(numeric)))
                if excess > worst.0 || a.isNaN { worst = (excess.isNaN ? .infinity : excess, i, a, numeric) }
            }
            if worst.1 >= 0 {
                XCTFail("input \(inputIndex) \(input.shape): element \(worst.1) analytic \(worst.2) vs numeric \(worst.3)",
                        file: file, line: line)
            }
        }
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
