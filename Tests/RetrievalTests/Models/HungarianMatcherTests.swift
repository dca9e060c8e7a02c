import NN
import Retrieval
import XCTest

final class HungarianMatcherTests: XCTestCase {
    /// The minimum total cost over every injective assignment of the smaller side.
    private func bruteForceMinimum(_ cost: [Double], rows: Int, columns: Int) -> Double {
        var best = Double.infinity
        if rows <= columns {
            func search(_ row: Int, _ used: inout [Bool], _ total: Double) {
                if row == rows { best = min(best, total); return }
                for c in 0..<columns where !used[c] {
                    used[c] = true
                    search(row + 1, &used, total + cost[row * columns + c])
                    used[c] = false
                }
            }
            var used = [Bool](repeating: false, count: columns)
            search(0, &used, 0)
        } else {
            var transposed = [Double](repeating: 0, count: cost.count)
            for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = cost[r * columns + c] } }
            return bruteForceMinimum(transposed, rows: columns, columns: rows)
        }
        return best
    }

    func testAssignmentEqualsBruteForceOnRandomProblems() {
        var generator = SeededGenerator(seed: 7)
        for trial in 0..<300 {
            let rows = 1 + Int(generator.next() % 6), columns = 1 + Int(generator.next() % 6)
            // Some trials use few distinct integer costs, so ties are common.
            let cost: [Double] = (0..<(rows * columns)).map { _ in
                trial % 3 == 0 ? Double(generator.next() % 4) : Double(generator.nextUniform(in: -5, 5))
            }
            let pairs = LinearAssignment.solve(cost: cost, rows: rows, columns: columns)
            XCTAssertEqual(pairs.count, min(rows, columns))
            XCTAssertEqual(Set(pairs.map(\.row)).count, pairs.count, "rows reused")
            XCTAssertEqual(Set(pairs.map(\.column)).count, pairs.count, "columns reused")
            let total = pairs.reduce(0) { $0 + cost[$1.row * columns + $1.column] }
            XCTAssertEqual(total, bruteForceMinimum(cost, rows: rows, columns: columns), accuracy: 1e-9,
                           "trial \(trial): \(rows) x \(columns)")
        }
    }

    func testMatcherCostCombinesL1GIoUAndForegroundProbability() {
        let matcher = HungarianMatcher(spanCost: 10, giouCost: 1, labelCost: 4)
        // One query: center 0.3, width 0.4 -> [0.1, 0.5]; logits (ln 3, 0) -> p_fg = 0.75.
        let logits: [Float] = [Float(log(3.0)), 0]
        let spans: [Float] = [0.3, 0.4]
        let target = SpanTarget(center: 0.4, width: 0.2)  // [0.3, 0.5]: IoU 0.5, hull = union, gIoU 0.5
        let cost = matcher.costMatrix(logits: logits[...], spans: spans[...], targets: [target])
        XCTAssertEqual(cost[0], 10 * 0.3 - 1 * 0.5 - 4 * 0.75, accuracy: 1e-6)
    }

    func testMatcherPairsEachTargetWithItsNearestQuery() {
        let matcher = HungarianMatcher(spanCost: 10, giouCost: 1, labelCost: 4)
        let spans = Tensor(shape: [1, 3, 2], data: [0.2, 0.1, 0.8, 0.2, 0.5, 0.5])
        let logits = Tensor(zeros: [1, 3, 2])
        let targets = [[SpanTarget(center: 0.79, width: 0.21), SpanTarget(center: 0.21, width: 0.1)]]
        let matches = matcher.match(logits: logits, spans: spans, targets: targets)[0]
        XCTAssertEqual(matches.map(\.query), [0, 1])
        XCTAssertEqual(matches.map(\.target), [1, 0])
    }
}
