import Foundation

/// The floating-point operations of numpy and Python that decide the last bits of the official metrics.
///
/// Reproducing a metric "exactly" means reproducing its rounding to two decimals, and a sum taken in another
/// order can move a value across a rounding boundary. So sums follow numpy's order: `np.sum`/`np.mean` over a
/// contiguous array use pairwise summation, `mean(axis=0)` over a (queries, thresholds) array adds the rows in
/// sequence.
enum ReferenceArithmetic {
    /// numpy's pairwise summation (`pairwise_sum_DOUBLE`): plain loop below 8 elements, eight interleaved
    /// accumulators up to 128, and halving (at a multiple of 8) above.
    static func pairwiseSum(_ values: UnsafeBufferPointer<Double>) -> Double {
        let count = values.count
        if count < 8 {
            var sum = 0.0
            for value in values { sum += value }
            return sum
        }
        if count <= 128 {
            var r0 = values[0], r1 = values[1], r2 = values[2], r3 = values[3]
            var r4 = values[4], r5 = values[5], r6 = values[6], r7 = values[7]
            var index = 8
            while index < count - count % 8 {
                r0 += values[index]; r1 += values[index + 1]; r2 += values[index + 2]; r3 += values[index + 3]
                r4 += values[index + 4]; r5 += values[index + 5]; r6 += values[index + 6]; r7 += values[index + 7]
                index += 8
            }
            var sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while index < count {
                sum += values[index]
                index += 1
            }
            return sum
        }
        var half = count / 2
        half -= half % 8
        return pairwiseSum(UnsafeBufferPointer(rebasing: values[0..<half]))
            + pairwiseSum(UnsafeBufferPointer(rebasing: values[half..<count]))
    }

    /// `np.sum` of a contiguous array.
    static func sum(_ values: [Double]) -> Double {
        values.withUnsafeBufferPointer { pairwiseSum($0) }
    }

    /// `np.mean` of a contiguous array: the pairwise sum divided by the count (NaN when empty, as numpy).
    static func mean(_ values: [Double]) -> Double {
        sum(values) / Double(values.count)
    }

    /// Python's `round(x, 2)`, equivalently `float(f"{x:.2f}")`: the decimal with two places nearest to the
    /// exact binary value of `x` (ties to even), returned as the Double nearest to that decimal.
    ///
    /// `(x * 100).rounded()` is not the same: the product is itself rounded. The Double nearest 93.255 lies
    /// below the tie, so Python gives 93.25, but `93.255 * 100` rounds to exactly 9325.5, which goes to 9326.
    static func roundToHundredths(_ x: Double) -> Double {
        guard x.isFinite else { return x }
        let magnitude = x.magnitude
        guard magnitude < 1e13 else { return x }
        // The fused multiply-add evaluates magnitude * 100 - c with one rounding, so its sign is the sign of the
        // exact difference: these comparisons are exact.
        func exactDifference(_ c: Double) -> Double { (-c).addingProduct(magnitude, 100) }
        var hundredths = (magnitude * 100).rounded(.down)
        while exactDifference(hundredths) < 0 { hundredths -= 1 }
        while exactDifference(hundredths + 1) >= 0 { hundredths += 1 }
        let aboveHalf = exactDifference(hundredths + 0.5)
        if aboveHalf > 0 || (aboveHalf == 0 && hundredths.truncatingRemainder(dividingBy: 2) != 0) {
            hundredths += 1
        }
        // IEEE division is correctly rounded, so this is the Double nearest to the decimal, as float() parses it.
        let rounded = hundredths / 100
        return x < 0 ? -rounded : rounded
    }

    /// A metric as the official script reports it: `float(f"{100 * x:.2f}")`.
    static func percent(_ fraction: Double) -> Double {
        roundToHundredths(100 * fraction)
    }

    /// A float as Python's `json.dumps` writes it, for the range metrics live in: `repr` (the shortest digits
    /// that round-trip, `.0` for integral values) and `NaN` for an undefined metric. Swift's description
    /// prints the same digits; the two differ only in where they switch to exponent notation, which a value
    /// rounded to hundredths never reaches.
    static func pythonJSONNumber(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "-Infinity" : "Infinity" }
        let text = x.description
        return text.contains(".") || text.contains("e") ? text : text + ".0"
    }
}
