import Foundation

/// Moment-retrieval average precision of one query, as the official `compute_average_precision_detection`
/// computes it (ActivityNet-style detection AP restricted to one "video", the query).
enum DetectionAveragePrecision {
    /// AP at each IoU threshold.
    ///
    /// - Parameters:
    ///   - predictions: the query's predicted windows as listed (already cut to the first N); must not be empty.
    ///   - groundTruth: the query's ground-truth windows (its recall denominator); must not be empty.
    ///   - thresholds: IoU thresholds; a prediction matches a window when their IoU is at least the threshold.
    /// - Returns: one AP per threshold, in [0, 1].
    ///
    /// Predictions are visited by descending score, ties in list order (Python's stable sort). Each prediction
    /// tries the ground-truth windows by descending IoU and takes the first one not yet matched at that
    /// threshold; it is a false positive as soon as the next window's IoU falls below the threshold. Equal IoUs
    /// are tried last-index first: the reverse of the ascending order that numpy's `argsort` gives for short
    /// arrays in its classic (insertion-sort) path. AP is the area under the precision-recall steps after making
    /// precision non-increasing from the right (VOC all-point interpolation).
    static func compute(predictions: [ScoredWindow], groundTruth: [TimeWindow], thresholds: [Double]) -> [Double] {
        precondition(!predictions.isEmpty && !groundTruth.isEmpty)
        let predictionOrder = predictions.indices.sorted { lhs, rhs in
            predictions[lhs].score > predictions[rhs].score
                || (predictions[lhs].score == predictions[rhs].score && lhs < rhs)
        }
        var matched = [Bool](repeating: false, count: thresholds.count * groundTruth.count)
        var isTruePositive = [Bool](repeating: false, count: thresholds.count * predictions.count)
        var ious = [Double](repeating: 0, count: groundTruth.count)

        for (rank, predictionIndex) in predictionOrder.enumerated() {
            let window = predictions[predictionIndex].window
            for (gtIndex, gtWindow) in groundTruth.enumerated() {
                ious[gtIndex] = window.intersectionOverUnion(gtWindow)
            }
            var windowOrder = Array(groundTruth.indices)
            windowOrder.sort { lhs, rhs in Self.descendingIoU(ious[lhs], lhs, before: ious[rhs], rhs) }
            for thresholdIndex in thresholds.indices {
                let threshold = thresholds[thresholdIndex]
                for gtIndex in windowOrder {
                    // NaN (two zero-length windows) is not below any threshold, as in numpy.
                    if ious[gtIndex] < threshold { break }
                    if matched[thresholdIndex * groundTruth.count + gtIndex] { continue }
                    matched[thresholdIndex * groundTruth.count + gtIndex] = true
                    isTruePositive[thresholdIndex * predictions.count + rank] = true
                    break
                }
            }
        }

        let positives = Double(groundTruth.count)
        return thresholds.indices.map { thresholdIndex in
            var precision: [Double] = [0]
            var recall: [Double] = [0]
            precision.reserveCapacity(predictions.count + 2)
            recall.reserveCapacity(predictions.count + 2)
            var truePositives = 0.0
            var falsePositives = 0.0
            for rank in 0..<predictions.count {
                if isTruePositive[thresholdIndex * predictions.count + rank] { truePositives += 1 } else { falsePositives += 1 }
                recall.append(truePositives / positives)
                precision.append(truePositives / (truePositives + falsePositives))
            }
            precision.append(0)
            recall.append(1)
            return interpolatedAveragePrecision(precision: &precision, recall: recall)
        }
    }

    /// The order numpy's `argsort()[::-1]` gives: descending IoU, NaN first, equal values last-index first.
    private static func descendingIoU(_ lhsIoU: Double, _ lhs: Int, before rhsIoU: Double, _ rhs: Int) -> Bool {
        if lhsIoU.isNaN != rhsIoU.isNaN { return lhsIoU.isNaN }
        if lhsIoU != rhsIoU && !lhsIoU.isNaN { return lhsIoU > rhsIoU }
        return lhs > rhs
    }

    /// The official `interpolated_precision_recall` on arrays that already carry the sentinels (precision
    /// `[0, ..., 0]`, recall `[0, ..., 1]`): precision made non-increasing from the right, then the sum of
    /// recall steps times precision, summed the way `np.sum` does.
    static func interpolatedAveragePrecision(precision: inout [Double], recall: [Double]) -> Double {
        for index in stride(from: precision.count - 2, through: 0, by: -1) {
            precision[index] = max(precision[index], precision[index + 1])
        }
        var terms: [Double] = []
        terms.reserveCapacity(recall.count)
        for index in 1..<recall.count where recall[index] != recall[index - 1] {
            terms.append((recall[index] - recall[index - 1]) * precision[index])
        }
        return ReferenceArithmetic.sum(terms)
    }
}
