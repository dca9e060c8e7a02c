import Foundation
import NN
import Tensor

/// Minimum-cost assignment of a rectangular cost matrix (the Hungarian method with potentials,
/// O(n^2 m)): every row of the smaller side is assigned a distinct element of the larger side.
public enum LinearAssignment {
    /// `cost` is `rows x columns` (row-major). Returns `(row, column)` pairs, `min(rows, columns)` of
    /// them, sorted by row, minimising the summed cost.
    public static func solve(cost: [Double], rows: Int, columns: Int) -> [(row: Int, column: Int)] {
        precondition(cost.count == rows * columns, "LinearAssignment: \(cost.count) costs for \(rows) x \(columns)")
        guard rows > 0 && columns > 0 else { return [] }
        if rows > columns {
            // Solve the transpose so the smaller side is the one assigned.
            var transposed = [Double](repeating: 0, count: cost.count)
            for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = cost[r * columns + c] } }
            return solve(cost: transposed, rows: columns, columns: rows)
                .map { (row: $0.column, column: $0.row) }.sorted { $0.row < $1.row }
        }
        let n = rows, m = columns
        // 1-based potentials u (rows), v (columns); assignedRow[j] = row matched to column j (0 = none).
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var assignedRow = [Int](repeating: 0, count: m + 1), way = [Int](repeating: 0, count: m + 1)
        for i in 1...n {
            assignedRow[0] = i
            var j0 = 0
            var minimum = [Double](repeating: .infinity, count: m + 1)
            var used = [Bool](repeating: false, count: m + 1)
            repeat {
                used[j0] = true
                let i0 = assignedRow[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...m where !used[j] {
                    let reduced = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j]
                    if reduced < minimum[j] { minimum[j] = reduced; way[j] = j0 }
                    if minimum[j] < delta { delta = minimum[j]; j1 = j }
                }
                for j in 0...m {
                    if used[j] { u[assignedRow[j]] += delta; v[j] -= delta } else { minimum[j] -= delta }
                }
                j0 = j1
            } while assignedRow[j0] != 0
            repeat {
                let j1 = way[j0]
                assignedRow[j0] = assignedRow[j1]
                j0 = j1
            } while j0 != 0
        }
        var pairs: [(row: Int, column: Int)] = []
        for j in 1...m where assignedRow[j] != 0 { pairs.append((row: assignedRow[j] - 1, column: j - 1)) }
        return pairs.sorted { $0.row < $1.row }
    }
}

/// DETR's bipartite matching of predicted moments to ground-truth windows, per sample, on
/// `cost = span * L1(center, width) + giou * (-gIoU) + label * (-p_foreground)`.
public struct HungarianMatcher: Sendable {
    public var spanCost: Float
    public var giouCost: Float
    public var labelCost: Float

    public init(spanCost: Float, giouCost: Float, labelCost: Float) {
        self.spanCost = spanCost
        self.giouCost = giouCost
        self.labelCost = labelCost
    }

    /// The matcher whose costs equal the loss coefficients (as both papers set them).
    public init(coefficients: LossCoefficients) {
        self.init(spanCost: coefficients.span, giouCost: coefficients.giou, labelCost: coefficients.label)
    }

    /// The cost matrix `[N queries x T targets]` of one sample, row-major. `logits` `[N, 2]` (index 0 =
    /// foreground), `spans` `[N, 2]` (center, width), both flat row-major.
    public func costMatrix(logits: ArraySlice<Float>, spans: ArraySlice<Float>, targets: [SpanTarget]) -> [Double] {
        let queries = spans.count / 2
        var cost = [Double](repeating: 0, count: queries * targets.count)
        let l0 = logits.startIndex, s0 = spans.startIndex
        for q in 0..<queries {
            let a = Double(logits[l0 + 2 * q]), b = Double(logits[l0 + 2 * q + 1])
            let foreground = 1 / (1 + Foundation.exp(b - a))
            let center = Double(spans[s0 + 2 * q]), width = Double(spans[s0 + 2 * q + 1])
            let predicted = SpanGeometry.startEnd(center: center, width: width)
            for (t, target) in targets.enumerated() {
                let l1 = abs(center - Double(target.center)) + abs(width - Double(target.width))
                let giou = SpanGeometry.generalizedIoU(predicted, SpanGeometry.startEnd(center: Double(target.center),
                                                                                        width: Double(target.width)))
                cost[q * targets.count + t] = Double(spanCost) * l1 - Double(giouCost) * giou - Double(labelCost) * foreground
            }
        }
        return cost
    }

    /// Per sample, the matched `(query, target)` pairs. `logits` and `spans` are `[B, N, 2]`.
    public func match(logits: Tensor, spans: Tensor, targets: [[SpanTarget]]) -> [[(query: Int, target: Int)]] {
        let profiled = Profiler.enter(.lossAndMatcher)
        defer { Profiler.exit(profiled) }
        checkSameShape(logits.shape, spans.shape, "HungarianMatcher logits vs spans")
        let (batch, queries) = (spans.shape[0], spans.shape[1])
        precondition(targets.count == batch, "HungarianMatcher: \(targets.count) target lists for batch \(batch)")
        return (0..<batch).map { b in
            let range = (b * queries * 2)..<((b + 1) * queries * 2)
            let cost = costMatrix(logits: logits.data[range], spans: spans.data[range], targets: targets[b])
            return LinearAssignment.solve(cost: cost, rows: queries, columns: targets[b].count)
                .map { (query: $0.row, target: $0.column) }
        }
    }
}
