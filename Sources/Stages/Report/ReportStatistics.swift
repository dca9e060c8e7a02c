import Foundation
import Tensor

/// Seeded percentile bootstrap: the report's confidence intervals.
///
/// A 95% interval of a mean is the 2.5th and 97.5th percentiles of the means of `resamples` resamples drawn
/// with replacement from the values (seeds, or queries for a single run). The generator is seeded from the
/// comparison's name, so the same inputs give the same interval in every report.
enum Bootstrap {
    static let resamples = 10_000
    static let level = 0.95

    /// The 95% interval of the mean of `values`; nil for fewer than two values (no spread to resample).
    static func interval(_ values: [Double], seed: String) -> (low: Double, high: Double)? {
        guard values.count >= 2 else { return nil }
        var generator = SeededGenerator(seed: seedValue(seed))
        let n = values.count
        var means = [Double](repeating: 0, count: resamples)
        values.withUnsafeBufferPointer { v in
            for r in 0..<resamples {
                var total = 0.0
                for _ in 0..<n { total += v[Int(generator.next() % UInt64(n))] }
                means[r] = total / Double(n)
            }
        }
        means.sort()
        return (percentile(means, (1 - level) / 2), percentile(means, 1 - (1 - level) / 2))
    }

    /// Linear interpolation between the closest ranks of sorted `values` (numpy's default).
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let below = Int(position.rounded(.down)), above = min(below + 1, sorted.count - 1)
        return sorted[below] + (sorted[above] - sorted[below]) * (position - Double(below))
    }

    /// FNV-1a of the name: a stable seed per comparison.
    static func seedValue(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        return h
    }
}

/// `a - b` paired by unit (seed, or query of a single run) with its bootstrap interval.
struct PairedDifference {
    /// "seeds" or "queries".
    let unit: String
    let differences: [Double]
    let interval: (low: Double, high: Double)?

    init(unit: String, differences: [Double], seed: String) {
        self.unit = unit
        self.differences = differences
        interval = Bootstrap.interval(differences, seed: seed)
    }

    var mean: Double { differences.isEmpty ? .nan : differences.reduce(0, +) / Double(differences.count) }

    /// Share of units whose difference has the sign of the mean (ties count against).
    var signShare: Double {
        guard !differences.isEmpty, mean != 0 else { return 0 }
        return Double(differences.filter { $0 * mean > 0 }.count) / Double(differences.count)
    }

    enum Verdict: String {
        case reproduced, notReproduced = "not reproduced", inconclusive
    }

    /// Whether the claimed sign (`expectNegative`: the difference should be below zero) holds: the whole
    /// interval on the claimed side reproduces it, the whole interval on the other side refutes it, an interval
    /// that holds zero (or no interval) decides nothing.
    func verdict(expectNegative: Bool) -> Verdict {
        guard let interval else { return .inconclusive }
        let (low, high) = expectNegative ? (-interval.high, -interval.low) : interval
        if low > 0 { return .reproduced }
        if high < 0 { return .notReproduced }
        return .inconclusive
    }

    var text: String {
        guard let interval else { return differences.isEmpty ? "-" : String(format: "%+.2f (one %@)", mean, String(unit.dropLast())) }
        return String(format: "%+.2f [%+.2f, %+.2f]", mean, interval.low, interval.high)
    }
}
