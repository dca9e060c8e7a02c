import FuzzSupport
import Foundation
import Retrieval

/// Any bytes as a submission jsonl: predictions or an `EvaluationError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSubmissions(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = Data(FuzzDriver.bytes(start, count))
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

/// The executable's entry point (SwiftPM's name for it): libFuzzer's loop over `fuzzSubmissions`.
@_cdecl("fuzz_submissions_main")
public func fuzzEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzSubmissions)
}
