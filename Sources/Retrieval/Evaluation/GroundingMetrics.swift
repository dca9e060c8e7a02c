import Foundation

/// Charades-STA / TACoS style grounding metrics: Rk@t (the share of queries with a window among the top k whose
/// IoU with a ground-truth window is at least t) and mIoU (the mean IoU of the top window), in percent rounded to
/// hundredths as Python's `round(x, 2)`.
///
/// Windows are ranked by descending score (ties in list order), optionally thinned by temporal NMS before the
/// top k are taken. IoU is the usual intersection over union, the best over the query's ground-truth windows
/// (one in these datasets); two zero-length windows count as IoU 0. A query without predicted windows is a miss.
public struct GroundingMetrics: Equatable, Sendable {
    /// What to report.
    public struct Options: Equatable, Sendable {
        /// IoU thresholds t of Rk@t.
        public var iouThresholds: [Double]
        /// Ranks k of Rk@t.
        public var ranks: [Int]
        /// When set, NMS at this IoU runs on the score-ranked windows before the top k are taken.
        public var nmsThreshold: Double?

        public init(iouThresholds: [Double] = [0.3, 0.5, 0.7], ranks: [Int] = [1, 5], nmsThreshold: Double? = nil) {
            self.iouThresholds = iouThresholds
            self.ranks = ranks
            self.nmsThreshold = nmsThreshold
        }
    }

    /// One Rk@t value.
    public struct Recall: Equatable, Sendable {
        public var rank: Int
        public var threshold: Double
        public var value: Double

        /// The key the metric is reported under, e.g. `R5@0.7`.
        public var key: String { "R\(rank)@\(ReferenceArithmetic.pythonJSONNumber(threshold))" }
    }

    /// The number of queries scored.
    public var queryCount: Int
    /// Rk@t for every rank, then every threshold, in the order of the options.
    public var recalls: [Recall]
    /// Mean IoU of the top-ranked window.
    public var meanIoU: Double

    /// Scores `predictions` against `annotations`; the qids must match exactly.
    public static func evaluate(predictions: [MomentPrediction], annotations: [MomentAnnotation],
                                options: Options = Options()) throws(EvaluationError) -> GroundingMetrics
    {
        let pairs = try QueryPairing.pair(predictions, annotations)
        // For each query, the best IoU among its top-k windows, for the largest k requested.
        let deepest = options.ranks.max() ?? 0
        var bestIoUAtRank: [[Double]] = []
        bestIoUAtRank.reserveCapacity(pairs.count)
        for (prediction, annotation) in pairs {
            guard let windows = prediction.windows else {
                throw .unscorable(qid: prediction.qid, problem: "no pred_relevant_windows")
            }
            if annotation.relevantWindows.isEmpty {
                throw .unscorable(qid: annotation.qid, problem: "the ground truth has no relevant_windows")
            }
            let ranked = options.nmsThreshold.map { TemporalNMS.suppress(windows, threshold: $0) }
                ?? TemporalNMS.rankedByScore(windows)
            var runningBest = 0.0
            var bestSoFar: [Double] = []
            for window in ranked.prefix(deepest) {
                let iou = annotation.relevantWindows.map { groundTruthIoU(window.window, $0) }.max() ?? 0
                runningBest = max(runningBest, iou)
                bestSoFar.append(runningBest)
            }
            bestIoUAtRank.append(bestSoFar)
        }

        let count = Double(pairs.count)
        var recalls: [Recall] = []
        for rank in options.ranks {
            for threshold in options.iouThresholds {
                let hits = bestIoUAtRank.reduce(0) { total, best in
                    guard rank > 0, let reached = best.prefix(rank).last else { return total }
                    return total + (reached >= threshold ? 1 : 0)
                }
                recalls.append(Recall(rank: rank, threshold: threshold,
                                      value: ReferenceArithmetic.percent(Double(hits) / count)))
            }
        }
        let topIoUs = bestIoUAtRank.map { $0.first ?? 0 }
        return GroundingMetrics(queryCount: pairs.count, recalls: recalls,
                                meanIoU: ReferenceArithmetic.percent(ReferenceArithmetic.mean(topIoUs)))
    }

    /// Rk@t, when it was computed.
    public func recall(rank: Int, threshold: Double) -> Double? {
        recalls.first { $0.rank == rank && $0.threshold == threshold }?.value
    }

    /// The metrics as an ordered object: `R1@0.3`, ..., `R5@0.7`, `mIoU`.
    public func tree() -> MetricsTree {
        .object(recalls.map { MetricsTree.Entry($0.key, .number($0.value)) } + [MetricsTree.Entry("mIoU", .number(meanIoU))])
    }

    /// `tree()` as indented JSON, in the style of the QVHighlights metrics files.
    public func jsonString() -> String {
        tree().jsonString()
    }

    /// The metrics as an aligned two-column text table.
    public func table() -> String {
        MetricsTable.render(recalls.map { ($0.key, $0.value) } + [("mIoU", meanIoU)])
    }

    private static func groundTruthIoU(_ window: TimeWindow, _ groundTruth: TimeWindow) -> Double {
        let iou = window.intersectionOverUnion(groundTruth)
        return iou.isNaN ? 0 : iou
    }
}
