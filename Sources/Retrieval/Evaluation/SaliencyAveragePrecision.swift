import Foundation

/// Highlight-detection average precision of one (query, annotator) pair, as the official `get_ap` computes it
/// with its defaults (interpolated, not 11-point) on top of scikit-learn's `precision_recall_curve`.
enum SaliencyAveragePrecision {
    /// - Parameters:
    ///   - labels: whether each clip counts as a highlight for this annotator.
    ///   - scores: the predicted saliency of each clip, same count as `labels`.
    /// - Returns: AP in [0, 1]; 0 when no clip is a highlight and 1 when every clip is (the official shortcut,
    ///   taken whatever the scores).
    ///
    /// Clips with equal scores form one threshold of the curve (scikit-learn keeps only distinct score values),
    /// so a tie counts all its clips at once: a highlight tied with a non-highlight gets the precision of the
    /// pair, not of the highlight alone. The curve is walked from the highest to the lowest threshold; precision
    /// is made non-increasing towards higher recall and averaged over the points where recall grows. Recall is
    /// compared in Float32, as `get_ap` casts it, so that only steps visible in single precision count.
    static func compute(labels: [Bool], scores: [Double]) -> Double {
        compute(labels: labels, scores: scores, order: ranking(scores))
    }

    /// The clips by descending score (the order of equal scores does not matter: they form one threshold).
    static func ranking(_ scores: [Double]) -> [Int] {
        scores.indices.sorted { scores[$0] > scores[$1] }
    }

    /// `compute(labels:scores:)` with the ranking of `scores` already made, to share it between annotators.
    static func compute(labels: [Bool], scores: [Double], order: [Int]) -> Double {
        precondition(labels.count == scores.count && order.count == scores.count && !labels.isEmpty)
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        if positives == 0 { return 0 }
        if positives == labels.count { return 1 }

        // One point per distinct score, from the highest threshold down: cumulative true and false positives.
        var truePositives: [Double] = []
        var predictedPositives: [Double] = []
        var hits = 0
        for (rank, clip) in order.enumerated() {
            if labels[clip] { hits += 1 }
            let isLastOfTie = rank == order.count - 1 || scores[order[rank + 1]] != scores[clip]
            if isLastOfTie {
                truePositives.append(Double(hits))
                predictedPositives.append(Double(rank + 1))
            }
        }

        // scikit-learn returns the curve from the lowest threshold up, with a final point (precision 1, recall 0).
        let total = truePositives[truePositives.count - 1]
        var precision: [Double] = []
        var recall: [Float] = []
        precision.reserveCapacity(truePositives.count + 1)
        recall.reserveCapacity(truePositives.count + 1)
        for point in stride(from: truePositives.count - 1, through: 0, by: -1) {
            precision.append(truePositives[point] / predictedPositives[point])
            recall.append(Float(truePositives[point] / total))
        }
        precision.append(1)
        recall.append(0)

        for index in 1..<precision.count {
            precision[index] = max(precision[index - 1], precision[index])
        }
        var selected: [Double] = []
        selected.reserveCapacity(precision.count)
        for index in 0..<(recall.count - 1) where recall[index + 1] != recall[index] {
            selected.append(precision[index])
        }
        return ReferenceArithmetic.mean(selected)
    }
}
