import FuzzSupport
import Foundation
import Retrieval

/// Any bytes as a ground-truth annotation jsonl: records or an `EvaluationError`; the records then score
/// against themselves without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnnotations(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = Data(FuzzDriver.bytes(start, count))
    guard let annotations = try? MomentJSONL.parseAnnotations(data, source: "input.jsonl") else { return 0 }
    let predictions = annotations.map { a in
        MomentPrediction(qid: a.qid, windows: a.relevantWindows.map { ScoredWindow(start: $0.start, end: $0.end, score: 1) },
                         saliencyScores: [Double](repeating: 0.5, count: min(a.clipCount, 1000)))
    }
    _ = try? QVHighlightsEvaluator(options: .init()).evaluate(predictions: predictions, annotations: annotations)
    _ = try? GroundingMetrics.evaluate(predictions: predictions, annotations: annotations, options: .init())
    return 0
}

/// The executable's entry point (SwiftPM's name for it): libFuzzer's loop over `fuzzAnnotations`.
@_cdecl("fuzz_annotations_main")
public func fuzzEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzAnnotations)
}
