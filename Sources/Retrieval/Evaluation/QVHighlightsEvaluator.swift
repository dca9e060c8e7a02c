import Foundation

/// The official QVHighlights evaluation (`standalone_eval/eval.py` of Moment-DETR, shipped unchanged with
/// QD-DETR), reproduced to the last rounded digit.
///
/// Moment retrieval, per length bucket:
/// - MR-mAP: per query, the detection AP (`DetectionAveragePrecision`) of its first 10 listed windows against its
///   ground-truth windows in the bucket, at IoU 0.5, 0.55, ..., 0.95; averaged over the queries with at least one
///   prediction, then `average` is the mean over thresholds.
/// - MR-R1: the first listed window (not the best scored) against the ground-truth window of highest IoU; a hit
///   when IoU >= t.
/// - Buckets keep, per query, only the ground-truth windows whose length is in the bucket, and drop queries left
///   with none; `full` keeps everything unfiltered.
///
/// Highlight detection, per saliency level (Fair >= 2, Good >= 3, VeryGood >= 4): the ground truth of a query is
/// `int(duration / 2)` clips x 3 annotators, zero outside `relevant_clip_ids`.
/// - HL-Hit1: the clip of the first maximal predicted score is a hit when any annotator rates it at the level.
/// - HL-mAP: per query and annotator, `SaliencyAveragePrecision` of the predicted scores cut or zero-padded to the
///   clip count; averaged over queries x annotators.
///
/// Every metric is reported x100 and rounded to hundredths as Python's `round(x, 2)`; averages are taken over
/// unrounded values, with numpy's summation order.
public struct QVHighlightsEvaluator: Sendable {
    /// Choices beyond the official evaluation; the defaults reproduce it.
    public struct Options: Equatable, Sendable {
        /// Also report R1 at 0.1 ... 0.9 and the mean IoU of the first listed window (TD-DETR's extra columns),
        /// as additional keys.
        public var includeExtendedRecall: Bool
        /// How many listed windows per query MR-mAP considers (10 officially).
        public var maximumPredictedWindows: Int

        public init(includeExtendedRecall: Bool = false, maximumPredictedWindows: Int = 10) {
            self.includeExtendedRecall = includeExtendedRecall
            self.maximumPredictedWindows = maximumPredictedWindows
        }
    }

    /// The IoU thresholds of MR-mAP and MR-R1: `numpy.linspace(0.5, 0.95, 10)` passed through `f"{t:.2f}"`,
    /// i.e. the Doubles nearest to the decimals 0.5, 0.55, ..., 0.95.
    public static let iouThresholds: [Double] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]

    /// The thresholds of the extended R1 columns.
    public static let extendedRecallThresholds: [Double] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Scores a submission against the ground truth.
    ///
    /// Throws when the qids differ (`EvaluationError.qidMismatch`), when only some predictions carry windows or
    /// saliency scores, when a query to be scored has no ground-truth window, or when highlight detection is asked
    /// of a query without saliency annotation, an empty saliency prediction or a video shorter than one clip.
    public func evaluate(predictions: [MomentPrediction], annotations: [MomentAnnotation])
        throws(EvaluationError) -> QVHighlightsMetrics
    {
        let pairs = try QueryPairing.pair(predictions, annotations)
        // As the official script, the first record decides which tasks are scored; the rest must agree.
        let first = pairs[0].prediction
        var retrieval: [MomentLengthBucket: RetrievalScores]?
        var highlight: [SaliencyLevel: HighlightScores]?
        if first.windows != nil {
            retrieval = try evaluateRetrieval(pairs)
        }
        if first.saliencyScores != nil {
            highlight = try evaluateHighlights(pairs)
        }
        return QVHighlightsMetrics(retrieval: retrieval, highlight: highlight)
    }

    // MARK: - Moment retrieval

    private func evaluateRetrieval(_ pairs: [(prediction: MomentPrediction, annotation: MomentAnnotation)])
        throws(EvaluationError) -> [MomentLengthBucket: RetrievalScores]
    {
        var queries: [(windows: [ScoredWindow], groundTruth: [TimeWindow])] = []
        queries.reserveCapacity(pairs.count)
        for (prediction, annotation) in pairs {
            guard let windows = prediction.windows else {
                throw .unscorable(qid: prediction.qid, problem: "no pred_relevant_windows, though the first record has them")
            }
            if annotation.relevantWindows.isEmpty {
                throw .unscorable(qid: annotation.qid, problem: "the ground truth has no relevant_windows")
            }
            queries.append((windows, annotation.relevantWindows))
        }
        var result: [MomentLengthBucket: RetrievalScores] = [:]
        for bucket in MomentLengthBucket.allCases {
            let inBucket = queries.compactMap { query -> (windows: [ScoredWindow], groundTruth: [TimeWindow])? in
                let kept = query.groundTruth.filter { bucket.contains(length: $0.length) }
                return kept.isEmpty ? nil : (query.windows, kept)
            }
            result[bucket] = scoreRetrieval(inBucket)
        }
        return result
    }

    private func scoreRetrieval(_ queries: [(windows: [ScoredWindow], groundTruth: [TimeWindow])]) -> RetrievalScores {
        let thresholds = Self.iouThresholds
        // mean(axis=0) of the (queries, thresholds) AP array: rows added in order, then divided.
        var apSums = [Double](repeating: 0, count: thresholds.count)
        var scoredQueries = 0
        for query in queries where !query.windows.isEmpty {
            let predictions = Array(query.windows.prefix(options.maximumPredictedWindows))
            let ap = DetectionAveragePrecision.compute(
                predictions: predictions, groundTruth: query.groundTruth, thresholds: thresholds)
            for index in thresholds.indices { apSums[index] += ap[index] }
            scoredQueries += 1
        }
        let apMeans = apSums.map { $0 / Double(scoredQueries) }

        // R1 takes the first listed window; a query without any window counts as a miss (the official script
        // cannot score such a submission at all).
        let topIoUs = queries.map { query -> Double in
            guard let top = query.windows.first?.window else { return 0 }
            return top.intersectionOverHull(Self.bestMatch(for: top, in: query.groundTruth))
        }
        func recall(at threshold: Double) -> Double {
            let hits = topIoUs.reduce(0) { $0 + ($1 >= threshold ? 1 : 0) }
            return ReferenceArithmetic.percent(Double(hits) / Double(queries.count))
        }

        var scores = RetrievalScores(
            queryCount: queries.count,
            meanAveragePrecision: apMeans.map(ReferenceArithmetic.percent),
            averageMeanAveragePrecision: ReferenceArithmetic.percent(ReferenceArithmetic.mean(apMeans)),
            recallAtOne: thresholds.map(recall(at:)))
        if options.includeExtendedRecall {
            scores.extendedRecallAtOne = Self.extendedRecallThresholds.map(recall(at:))
            scores.meanIoU = ReferenceArithmetic.percent(ReferenceArithmetic.mean(topIoUs))
        }
        return scores
    }

    /// The ground-truth window `np.argmax` picks: the first of highest IoU, or the first whose IoU is NaN.
    static func bestMatch(for window: TimeWindow, in groundTruth: [TimeWindow]) -> TimeWindow {
        var best = 0
        var bestIoU = -Double.infinity
        for (index, candidate) in groundTruth.enumerated() {
            let iou = window.intersectionOverUnion(candidate)
            if iou.isNaN { return candidate }
            if iou > bestIoU {
                best = index
                bestIoU = iou
            }
        }
        return groundTruth[best]
    }

    // MARK: - Highlight detection

    private func evaluateHighlights(_ pairs: [(prediction: MomentPrediction, annotation: MomentAnnotation)])
        throws(EvaluationError) -> [SaliencyLevel: HighlightScores]
    {
        let levels = SaliencyLevel.allCases
        let annotators = MomentAnnotation.annotatorCount
        // Per level, the (queries, annotators) AP array in row-major order, which np.mean sums pairwise.
        var apValues = [[Double]](repeating: [], count: levels.count)
        var hits = [Int](repeating: 0, count: levels.count)
        for level in levels.indices { apValues[level].reserveCapacity(pairs.count * annotators) }

        for (prediction, annotation) in pairs {
            guard let predicted = prediction.saliencyScores else {
                throw .unscorable(qid: prediction.qid, problem: "no pred_saliency_scores, though the first record has them")
            }
            if predicted.isEmpty { throw .unscorable(qid: prediction.qid, problem: "pred_saliency_scores is empty") }
            guard let annotated = annotation.saliencyScores else {
                throw .unscorable(qid: annotation.qid, problem: "the ground truth has no saliency_scores")
            }
            let clipCount = annotation.clipCount
            if clipCount == 0 {
                throw .unscorable(qid: annotation.qid, problem: "duration \(annotation.duration) s holds no 2-second clip")
            }
            // The loader checks these; annotations built in code may not have been.
            if annotated.count != annotation.relevantClipIDs.count
                || annotated.contains(where: { $0.count != annotators })
                || annotation.relevantClipIDs.contains(where: { $0 < 0 || $0 >= clipCount }) {
                throw .unscorable(qid: annotation.qid, problem:
                    "relevant_clip_ids and saliency_scores must pair up, with \(annotators) scores per clip and ids below \(clipCount)")
            }
            // Clip-major ground truth; a clip listed twice keeps its last scores, as numpy's fancy assignment.
            var groundTruth = [Double](repeating: 0, count: clipCount * annotators)
            for (row, clip) in annotation.relevantClipIDs.enumerated() {
                for annotator in 0..<annotators { groundTruth[clip * annotators + annotator] = annotated[row][annotator] }
            }
            var scores = Array(predicted.prefix(clipCount))
            scores += repeatElement(0, count: clipCount - scores.count)
            let order = SaliencyAveragePrecision.ranking(scores)
            let topClip = Self.firstArgmax(predicted)

            for (levelIndex, level) in levels.enumerated() {
                let minimum = level.minimumScore
                if topClip < clipCount,
                   (0..<annotators).contains(where: { groundTruth[topClip * annotators + $0] >= minimum }) {
                    hits[levelIndex] += 1
                }
                for annotator in 0..<annotators {
                    let labels = (0..<clipCount).map { groundTruth[$0 * annotators + annotator] >= minimum }
                    apValues[levelIndex].append(SaliencyAveragePrecision.compute(labels: labels, scores: scores, order: order))
                }
            }
        }

        var result: [SaliencyLevel: HighlightScores] = [:]
        for (levelIndex, level) in levels.enumerated() {
            result[level] = HighlightScores(
                meanAveragePrecision: ReferenceArithmetic.percent(ReferenceArithmetic.mean(apValues[levelIndex])),
                hitAtOne: ReferenceArithmetic.percent(Double(hits[levelIndex]) / Double(pairs.count)))
        }
        return result
    }

    /// `np.argmax`: the index of the first maximal value.
    private static func firstArgmax(_ values: [Double]) -> Int {
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return best
    }
}
