import Foundation
import NN

/// Finite differences against the analytic backward pass, with the step and the tolerance derived from
/// Float32 rounding. One checker serves the NN and the model tests, so every gradient in the package is
/// held to the same stated standard.
///
/// The checked function's output is contracted with fixed random weights `R` (uniform in [-1, 1]) into
/// `L = sum_j out_j R_j`, summed in Double, and `L` is back-propagated once. Each input element `x` is
/// then moved by `+-h` and `+-2h` and its numeric derivative taken as Richardson's fourth-order central
/// difference
///
///     D = (4 D(h) - D(2h)) / 3,   D(s) = (L(x + s) - L(x - s)) / 2s,   h = 1e-2 (inputs are of order 1).
///
/// The analytic value `a` must satisfy `|a - D| <= relativeTolerance * |D| + rounding + resolution`:
/// - `relativeTolerance` is 1e-3, ten times below the 1% error of a perturbed backward formula that this
///   checker must catch.
/// - `rounding`, of the numeric side: every op runs in Float32 (unit roundoff `u = 2^-24`). An output that
///   depends on the moved element carries a relative error of at most `depth * u`, with `depth = 32`
///   covering the composite modules checked here (a few layers, reductions of a few dozen terms whose
///   roundings add up like a random walk rather than in the worst case); outputs that do not depend on it
///   are bit-identical in every evaluation and cancel exactly. So each `L(x +- s)` is off by at most
///   `delta = depth * u * S`, `S = sum_j |out_j R_j|` over the outputs that changed, and `D` by at most
///   `(4 delta / h + delta / 2h) / 3 = 1.5 delta / h`. Besides, an output is resolved only to its Float
///   spacing: a change below it leaves the output bit-identical (a scalar loss hides a tiny derivative
///   this way), so `D` is also off by up to `1.5 * 2u * S_all / h`, `S_all` over every output.
/// - `rounding`, of the analytic side: a gradient element is a Float32 sum of terms as large as the largest
///   gradients of the check (`G`, the largest `|D|` over every input), so it carries an absolute error
///   of up to `depth * u * G`; this is what a gradient that is exactly zero in theory (a key bias under
///   softmax) shows instead of 0.
/// - `resolution`: `D`'s truncation error, `h^4 f^(5) / 30`, is negligible for a smooth function. Where the
///   function has a kink within `2h` (ReLU, abs, max, a clamp, linear interpolation between clips), no
///   finite difference converges, and the slope jump `J` shows in one of two disagreements: a kink between
///   `h` and `2h` away makes `D(h)` and `D(2h)` differ, one within `h` makes the second differences at `h`
///   and `2h` differ (`S(s) = (L(x + s) - 2 L(x) + L(x - s)) / s^2`; `h |S(h) - S(2h)|` is up to `J / 2`).
///   For a piecewise-linear kink at any distance, `D` is off from the slope at `x` by at most twice the
///   larger of `|D(h) - D(2h)|` and `h |S(h) - S(2h)|`, and that is added, so such an element is judged
///   only as precisely as it can be resolved. For a smooth function both are `O(h^2)` smaller than the
///   derivatives. An element whose resolution exceeds 1% of `|D|` (plus its rounding) is measured again
///   with steps `h / 8` and `h / 64`, less likely to reach the kink, at the price of a rounding bound 8 or
///   64 times larger: the first resolved measurement counts, else the tightest. Unresolved after that, it
///   counts against the check: more than a quarter of the elements unresolved, or an input with none
///   resolved, fails, as such a check would prove little.
/// A gradient that never arrives (`grad == nil`) fails; it is not taken as zeros.
public struct GradientCheck {
    public let step: Double = 1e-2
    public let relativeTolerance: Double = 1e-3
    public let roundingDepth: Double = 32

    public init() {}

    static let unitRoundoff = Double(Float.ulpOfOne) / 2

    /// The numeric derivative of one element and what bounds its error.
    struct Estimate {
        var numeric: Double
        var rounding: Double
        var resolution: Double

        /// Whether no kink within reach blurs it: its resolution is within 1% of it and its rounding.
        var isResolved: Bool { resolution <= 0.01 * abs(numeric) + rounding }
    }

    /// One message per failing input (its worst element), or none when every element of every input passes.
    public func failures(_ inputs: [Variable], _ function: () -> Variable) -> [String] {
        for input in inputs { input.zeroGrad() }
        let probe = function()
        var weightGenerator = SeededGenerator(seed: 12345)
        let weights = Initialization.uniform(shape: probe.shape, bound: 1, generator: &weightGenerator)
        (probe * Variable(weights)).sum().backward()

        func evaluate() -> (total: Double, terms: [Double]) {
            GradientMode.withoutGradients {
                let out = function()
                var terms = [Double](repeating: 0, count: out.count)
                var total: Double = 0
                for j in 0..<out.count {
                    terms[j] = Double(out.value[flat: j]) * Double(weights[flat: j])
                    total += terms[j]
                }
                return (total, terms)
            }
        }

        // First every numeric derivative (the analytic side's rounding needs the largest of them).
        var estimates: [[Estimate]] = []
        for input in inputs {
            let original = input.value
            let (baseTotal, base) = evaluate()
            let outputMass = base.reduce(0) { $0 + abs($1) }
            func estimate(_ i: Int, step h: Double) -> Estimate {
                let x = Double(original[flat: i])
                var values: [Double] = [], taken: [Double] = []
                var changedMass: Double = 0
                for offset in [h, -h, 2 * h, -2 * h] {
                    var moved = original
                    moved[flat: i] = Float(x + offset)
                    // The moved element is rounded to Float: the step actually taken.
                    taken.append(Double(moved[flat: i]) - x)
                    input.assign(moved)
                    let (total, terms) = evaluate()
                    values.append(total)
                    changedMass = max(changedMass, Self.changedMass(terms, base))
                }
                input.assign(original)
                let near = (values[0] - values[1]) / (taken[0] - taken[1])
                let far = (values[2] - values[3]) / (taken[2] - taken[3])
                let curvatureNear = (values[0] - 2 * baseTotal + values[1]) / (taken[0] * -taken[1])
                let curvatureFar = (values[2] - 2 * baseTotal + values[3]) / (taken[2] * -taken[3])
                return Estimate(numeric: (4 * near - far) / 3,
                                rounding: 1.5 * Self.unitRoundoff * (roundingDepth * changedMass + 2 * outputMass) / h,
                                resolution: 2 * max(abs(near - far), h * abs(curvatureNear - curvatureFar)))
            }
            estimates.append((0..<original.count).map { i in
                // Near a kink, measure again with shorter steps, which are less likely to reach it.
                var best = estimate(i, step: step)
                for shorter in [step / 8, step / 64] where !best.isResolved {
                    let again = estimate(i, step: shorter)
                    if again.isResolved || again.rounding + again.resolution < best.rounding + best.resolution { best = again }
                }
                return best
            })
        }
        let largest = estimates.joined().map { abs($0.numeric) }.filter(\.isFinite).max() ?? 0
        let analyticRounding = roundingDepth * Self.unitRoundoff * largest

        var messages: [String] = []
        var unresolvedTotal = 0
        for (index, input) in inputs.enumerated() {
            guard input.requiresGrad else {
                messages.append("input \(index) \(input.shape) does not require gradients: nothing to check")
                continue
            }
            guard let analytic = input.grad else {
                messages.append("input \(index) \(input.shape) received no gradient (grad is nil)")
                continue
            }
            var worst: (excess: Double, element: Int, analytic: Double, numeric: Double) = (0, -1, 0, 0)
            var unresolved = 0
            for (i, e) in estimates[index].enumerated() {
                if !e.isResolved { unresolved += 1 }
                let a = Double(analytic[flat: i])
                let allowed = relativeTolerance * abs(e.numeric) + e.rounding + analyticRounding + e.resolution
                let excess = abs(a - e.numeric) - allowed
                if !a.isFinite || !e.numeric.isFinite || excess > worst.excess {
                    worst = (excess.isFinite ? excess : .infinity, i, a, e.numeric)
                }
            }
            unresolvedTotal += unresolved
            if worst.element >= 0 {
                messages.append("input \(index) \(input.shape) element \(worst.element): analytic \(worst.analytic) "
                                + "vs numeric \(worst.numeric) (beyond the tolerance by \(worst.excess))")
            } else if unresolved > 0 && unresolved == estimates[index].count {
                messages.append("input \(index) \(input.shape): every element sits on a kink finite differences cannot "
                                + "resolve; move the inputs away from it")
            }
        }
        let total = estimates.reduce(0) { $0 + $1.count }
        if unresolvedTotal * 4 > total {
            messages.append("\(unresolvedTotal) of \(total) elements sit on a kink finite differences cannot resolve; "
                            + "move the inputs away from it")
        }
        return messages
    }

    /// `sum_j max(|a_j|, |b_j|)` over the terms that differ between two evaluations: the contributions
    /// whose rounding does not cancel.
    static func changedMass(_ a: [Double], _ b: [Double]) -> Double {
        var mass: Double = 0
        for j in a.indices where a[j] != b[j] { mass += max(abs(a[j]), abs(b[j])) }
        return mass
    }
}
