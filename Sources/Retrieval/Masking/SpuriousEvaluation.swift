import Foundation

/// The numbers of a (masked or unmasked) evaluation that the report compares: moment retrieval R1 at
/// IoU 0.3/0.5/0.7, top-1 mIoU, mAP at 0.5/0.75 and averaged, and highlight detection mAP / HIT@1 at
/// "Very Good", all x100 as the official evaluation prints them. On masked inputs every one of them is
/// "spurious": lower is better.
public struct RetrievalSummary: Sendable, Equatable {
    public var values: [(key: String, value: Double?)]

    public static let keys = ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"]

    public static func == (a: RetrievalSummary, b: RetrievalSummary) -> Bool {
        a.values.map(\.key) == b.values.map(\.key) && a.values.map(\.value) == b.values.map(\.value)
    }

    public subscript(key: String) -> Double? { values.first { $0.key == key }?.value ?? nil }

    /// Scores predictions against a split's ground truth: the official QVHighlights metrics (with the
    /// extended R1 and mIoU) when the split has saliency, else the grounding metrics (no mAP or HD).
    public static func evaluate(_ predictions: [MomentPrediction], split: MomentSplit) throws -> (summary: RetrievalSummary, metricsJSON: String) {
        let gt = try MomentJSONL.parseAnnotations(Data(split.annotationLines().joined(separator: "\n").utf8),
                                                  source: "\(split.name) annotations")
        if split.queries.hasSaliency {
            let m = try QVHighlightsEvaluator(options: .init(includeExtendedRecall: true)).evaluate(predictions: predictions, annotations: gt)
            let brief = m.tree()["brief"]
            func v(_ k: String) -> Double? { brief?[k]?.number.flatMap { $0.isFinite ? $0 : nil } }
            return (RetrievalSummary(values: [
                ("R1@0.3", v("MR-full-R1@0.3")), ("R1@0.5", v("MR-full-R1@0.5")), ("R1@0.7", v("MR-full-R1@0.7")),
                ("mIoU", v("MR-full-mIoU")), ("mAP@0.5", v("MR-full-mAP@0.5")), ("mAP@0.75", v("MR-full-mAP@0.75")),
                ("mAP", v("MR-full-mAP")), ("HD-mAP", v("HL-min-VeryGood-mAP")), ("HD-HIT@1", v("HL-min-VeryGood-Hit1")),
            ]), m.jsonString())
        }
        let m = try GroundingMetrics.evaluate(predictions: predictions, annotations: gt, options: .init())
        return (RetrievalSummary(values: [
            ("R1@0.3", m.recall(rank: 1, threshold: 0.3)), ("R1@0.5", m.recall(rank: 1, threshold: 0.5)),
            ("R1@0.7", m.recall(rank: 1, threshold: 0.7)), ("mIoU", m.meanIoU), ("mAP@0.5", nil), ("mAP@0.75", nil),
            ("mAP", nil), ("HD-mAP", nil), ("HD-HIT@1", nil),
        ]), m.jsonString())
    }
}

/// Diagnostics that need the synthetic benchmark's extra ground truth, or plain span geometry.
public enum SpanDiagnostics {
    /// Where each top-1 span falls: on the queried event, on the distractor event (the other event in the
    /// video), or on neither (overlap > 0 counts; a span touching both counts for the larger overlap).
    /// A model that ignores the query splits evenly between the two events. Nil without distractor data.
    public static func queryGrounding(_ predictions: [MomentPrediction], split: MomentSplit) -> (queried: Double, distractor: Double, neither: Double)? {
        guard let distractors = split.queries.distractorWindows else { return nil }
        var index: [String: Int] = [:]
        for (i, qid) in split.queries.qids.enumerated() { index[qid] = i }
        var queried = 0, distractor = 0, neither = 0
        for p in predictions {
            guard let q = index[p.qid], let top = p.windows?.first?.window else { continue }
            let target = split.queries.windows[q].map { overlap(top.start, top.end, $0[0], $0[1]) }.max() ?? 0
            let other = overlap(top.start, top.end, distractors[q][0], distractors[q][1])
            if target == 0 && other == 0 { neither += 1 } else if target >= other { queried += 1 } else { distractor += 1 }
        }
        let n = Double(max(1, queried + distractor + neither))
        return (100 * Double(queried) / n, 100 * Double(distractor) / n, 100 * Double(neither) / n)
    }

    /// Per query of `split` (in its order), the IoU of the first listed window with the ground-truth window it
    /// best matches, as the official R1 computes it (0 for a query without a prediction or ground truth): R1@t is
    /// the share of these at or above t, mIoU their mean. The report bootstraps over them.
    public static func topOneIoUs(_ predictions: [MomentPrediction], split: MomentSplit) -> [Double] {
        var byQid: [String: TimeWindow] = [:]
        for p in predictions { if let top = p.windows?.first?.window { byQid[p.qid] = top } }
        return split.queries.qids.indices.map { q in
            let truth = split.queries.windows[q].map { TimeWindow(start: $0[0], end: $0[1]) }
            guard let top = byQid[split.queries.qids[q]], !truth.isEmpty else { return 0 }
            return top.intersectionOverHull(QVHighlightsEvaluator.bestMatch(for: top, in: truth))
        }
    }

    /// Mean over queries of 1 - gIoU between the top-1 window and the ground-truth window it best matches:
    /// the generalised-IoU loss of the final prediction, on unmasked inputs.
    public static func meanGIoULoss(_ predictions: [MomentPrediction], split: MomentSplit) -> Double {
        var index: [String: Int] = [:]
        for (i, qid) in split.queries.qids.enumerated() { index[qid] = i }
        var total = 0.0, count = 0
        for p in predictions {
            guard let q = index[p.qid], let top = p.windows?.first?.window, !split.queries.windows[q].isEmpty else { continue }
            let best = split.queries.windows[q].map { generalizedIoU(top.start, top.end, $0[0], $0[1]) }.max()!
            total += 1 - best
            count += 1
        }
        return count == 0 ? 0 : total / Double(count)
    }

    static func overlap(_ a0: Double, _ a1: Double, _ b0: Double, _ b1: Double) -> Double {
        max(0, min(a1, b1) - max(a0, b0))
    }

    static func generalizedIoU(_ a0: Double, _ a1: Double, _ b0: Double, _ b1: Double) -> Double {
        let intersection = overlap(a0, a1, b0, b1)
        let union = (a1 - a0) + (b1 - b0) - intersection
        let hull = max(a1, b1) - min(a0, b0)
        guard union > 0, hull > 0 else { return 0 }
        return intersection / union - (hull - union) / hull
    }
}
