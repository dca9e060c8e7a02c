import Foundation
import Retrieval

/// Any bytes as a submission jsonl: predictions or an `EvaluationError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSubmissions(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(UnsafeRawBufferPointer(start: start, count: count))
    guard let predictions = try? MomentJSONL.parsePredictions(data, source: "input.jsonl") else { return 0 }
    // Scored against a ground truth that has the same qids, so the metrics code sees every parsed value.
    let annotations = predictions.map { p in
        MomentAnnotation(qid: p.qid, duration: 150, relevantWindows: [TimeWindow(start: 10, end: 20)],
                         relevantClipIDs: [5, 6], saliencyScores: [[1, 2, 3], [4, 4, 4]])
    }
    _ = try? QVHighlightsEvaluator(options: .init(includeExtendedRecall: true)).evaluate(predictions: predictions, annotations: annotations)
    _ = try? GroundingMetrics.evaluate(predictions: predictions, annotations: annotations, options: .init(nmsThreshold: 0.7))
    return 0
}
