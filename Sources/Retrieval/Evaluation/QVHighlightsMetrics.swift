import Foundation

/// The ground-truth window lengths the official evaluation reports moment retrieval for.
public enum MomentLengthBucket: String, CaseIterable, Sendable {
    /// Windows of length in (0, 10] s.
    case short
    /// Windows of length in (10, 30] s.
    case middle
    /// Windows of length in (30, 150] s.
    case long
    /// Every window and every query, unfiltered.
    case full

    /// Whether a ground-truth window of this length belongs to the bucket (lower bound excluded).
    public func contains(length: Double) -> Bool {
        switch self {
        case .short: return 0 < length && length <= 10
        case .middle: return 10 < length && length <= 30
        case .long: return 30 < length && length <= 150
        case .full: return true
        }
    }
}

/// The minimum saliency score (0-4) that makes a clip a highlight.
public enum SaliencyLevel: String, CaseIterable, Sendable {
    case fair = "Fair"
    case good = "Good"
    case veryGood = "VeryGood"

    public var minimumScore: Double {
        switch self {
        case .fair: return 2
        case .good: return 3
        case .veryGood: return 4
        }
    }
}

/// Moment-retrieval metrics of one length bucket, in percent rounded to hundredths.
public struct RetrievalScores: Equatable, Sendable {
    /// Queries in the bucket (those with at least one ground-truth window in it).
    public var queryCount: Int
    /// MR-mAP at each of `QVHighlightsEvaluator.iouThresholds`; NaN when no query is in the bucket.
    public var meanAveragePrecision: [Double]
    /// The mean of the unrounded per-threshold mAPs, rounded.
    public var averageMeanAveragePrecision: Double
    /// R1 at each of `QVHighlightsEvaluator.iouThresholds`.
    public var recallAtOne: [Double]
    /// R1 at each of `QVHighlightsEvaluator.extendedRecallThresholds`, when requested.
    public var extendedRecallAtOne: [Double]?
    /// Mean IoU of the first listed window with its best ground-truth window, when requested.
    public var meanIoU: Double?

    public init(queryCount: Int, meanAveragePrecision: [Double], averageMeanAveragePrecision: Double,
                recallAtOne: [Double], extendedRecallAtOne: [Double]? = nil, meanIoU: Double? = nil) {
        self.queryCount = queryCount
        self.meanAveragePrecision = meanAveragePrecision
        self.averageMeanAveragePrecision = averageMeanAveragePrecision
        self.recallAtOne = recallAtOne
        self.extendedRecallAtOne = extendedRecallAtOne
        self.meanIoU = meanIoU
    }

    /// MR-mAP at `threshold` (one of `QVHighlightsEvaluator.iouThresholds`).
    public func meanAveragePrecision(at threshold: Double) -> Double? {
        QVHighlightsEvaluator.iouThresholds.firstIndex(of: threshold).map { meanAveragePrecision[$0] }
    }

    /// R1 at `threshold`, from the official thresholds or the extended ones.
    public func recallAtOne(at threshold: Double) -> Double? {
        if let index = QVHighlightsEvaluator.iouThresholds.firstIndex(of: threshold) { return recallAtOne[index] }
        if let extended = extendedRecallAtOne,
           let index = QVHighlightsEvaluator.extendedRecallThresholds.firstIndex(of: threshold) {
            return extended[index]
        }
        return nil
    }
}

/// Highlight-detection metrics at one saliency level, in percent rounded to hundredths.
public struct HighlightScores: Equatable, Sendable {
    /// HL-mAP: the mean over queries and the three annotators of the per-annotator AP.
    public var meanAveragePrecision: Double
    /// HL-Hit1: the share of queries whose top-scored clip is a highlight for at least one annotator.
    public var hitAtOne: Double

    public init(meanAveragePrecision: Double, hitAtOne: Double) {
        self.meanAveragePrecision = meanAveragePrecision
        self.hitAtOne = hitAtOne
    }
}

/// The result of a QVHighlights evaluation. `tree()` / `jsonString()` lay it out exactly as the official
/// `eval_submission` does: `brief` first, then the blocks sorted by name (`HL-min-Fair`, `HL-min-Good`,
/// `HL-min-VeryGood`, `full`, `long`, `middle`, `short`).
public struct QVHighlightsMetrics: Equatable, Sendable {
    /// Moment-retrieval metrics per bucket; nil when the submission has no `pred_relevant_windows`.
    public var retrieval: [MomentLengthBucket: RetrievalScores]?
    /// Highlight-detection metrics per level; nil when the submission has no `pred_saliency_scores`.
    public var highlight: [SaliencyLevel: HighlightScores]?

    public init(retrieval: [MomentLengthBucket: RetrievalScores]?, highlight: [SaliencyLevel: HighlightScores]?) {
        self.retrieval = retrieval
        self.highlight = highlight
    }

    /// The headline numbers, in the official `brief` order: the moment-retrieval keys sorted by name, then the
    /// highlight keys by level; when extended recall was requested, `MR-full-R1@t` for the thresholds not
    /// already listed and `MR-full-mIoU` follow.
    public var brief: [MetricsTree.Entry] {
        var entries: [MetricsTree.Entry] = []
        if let retrieval, let full = retrieval[.full] {
            var retrievalEntries: [(String, Double)] = [
                ("MR-full-mAP", full.averageMeanAveragePrecision),
                ("MR-full-mAP@0.5", full.meanAveragePrecision(at: 0.5)!),
                ("MR-full-mAP@0.75", full.meanAveragePrecision(at: 0.75)!),
                ("MR-full-R1@0.5", full.recallAtOne(at: 0.5)!),
                ("MR-full-R1@0.7", full.recallAtOne(at: 0.7)!),
            ]
            for bucket in [MomentLengthBucket.short, .middle, .long] {
                if let scores = retrieval[bucket] {
                    retrievalEntries.append(("MR-\(bucket.rawValue)-mAP", scores.averageMeanAveragePrecision))
                }
            }
            // The official script sorts these keys by Python string order, which is byte order for ASCII.
            retrievalEntries.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            entries += retrievalEntries.map { MetricsTree.Entry($0.0, .number($0.1)) }
        }
        if let highlight {
            for level in SaliencyLevel.allCases {
                guard let scores = highlight[level] else { continue }
                entries.append(MetricsTree.Entry("HL-min-\(level.rawValue)-mAP", .number(scores.meanAveragePrecision)))
                entries.append(MetricsTree.Entry("HL-min-\(level.rawValue)-Hit1", .number(scores.hitAtOne)))
            }
        }
        if let full = retrieval?[.full], let extended = full.extendedRecallAtOne {
            let listed = Set(entries.map(\.key))
            for (threshold, value) in zip(QVHighlightsEvaluator.extendedRecallThresholds, extended) {
                let key = "MR-full-R1@\(ReferenceArithmetic.pythonJSONNumber(threshold))"
                if !listed.contains(key) { entries.append(MetricsTree.Entry(key, .number(value))) }
            }
            if let meanIoU = full.meanIoU { entries.append(MetricsTree.Entry("MR-full-mIoU", .number(meanIoU))) }
        }
        return entries
    }

    /// The whole result in the official layout. Extended-recall results, when present, add `MR-R1-extended`
    /// and `MR-mIoU` after `MR-R1` in each bucket; no official key moves.
    public func tree() -> MetricsTree {
        var blocks: [MetricsTree.Entry] = []
        if let highlight {
            for level in SaliencyLevel.allCases {
                guard let scores = highlight[level] else { continue }
                blocks.append(MetricsTree.Entry("HL-min-\(level.rawValue)", .object([
                    MetricsTree.Entry("HL-mAP", .number(scores.meanAveragePrecision)),
                    MetricsTree.Entry("HL-Hit1", .number(scores.hitAtOne)),
                ])))
            }
        }
        if let retrieval {
            for bucket in [MomentLengthBucket.full, .long, .middle, .short] {
                guard let scores = retrieval[bucket] else { continue }
                blocks.append(MetricsTree.Entry(bucket.rawValue, Self.bucketTree(scores)))
            }
        }
        return .object([MetricsTree.Entry("brief", .object(brief))] + blocks)
    }

    /// `tree()` as the official metrics file writes it (`json.dump(..., indent=4)`).
    public func jsonString() -> String {
        tree().jsonString()
    }

    /// The `brief` numbers as an aligned two-column text table, one metric per line.
    public func briefTable() -> String {
        MetricsTable.render(brief.map { ($0.key, $0.value.number ?? .nan) })
    }

    private static func bucketTree(_ scores: RetrievalScores) -> MetricsTree {
        func labelled(_ thresholds: [Double], _ values: [Double]) -> [MetricsTree.Entry] {
            zip(thresholds, values).map { MetricsTree.Entry(ReferenceArithmetic.pythonJSONNumber($0), .number($1)) }
        }
        var entries = [
            MetricsTree.Entry("MR-mAP", .object(
                labelled(QVHighlightsEvaluator.iouThresholds, scores.meanAveragePrecision)
                    + [MetricsTree.Entry("average", .number(scores.averageMeanAveragePrecision))])),
            MetricsTree.Entry("MR-R1", .object(labelled(QVHighlightsEvaluator.iouThresholds, scores.recallAtOne))),
        ]
        if let extended = scores.extendedRecallAtOne {
            entries.append(MetricsTree.Entry("MR-R1-extended", .object(
                labelled(QVHighlightsEvaluator.extendedRecallThresholds, extended))))
        }
        if let meanIoU = scores.meanIoU {
            entries.append(MetricsTree.Entry("MR-mIoU", .number(meanIoU)))
        }
        return .object(entries)
    }
}
