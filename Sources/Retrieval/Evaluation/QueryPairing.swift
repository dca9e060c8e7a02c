import Foundation

/// Pairs each prediction with the annotation of the same qid, after checking that both sides hold the same
/// qids (the official `match_number=True` check).
enum QueryPairing {
    /// The pairs in submission order.
    static func pair(_ predictions: [MomentPrediction], _ annotations: [MomentAnnotation])
        throws(EvaluationError) -> [(prediction: MomentPrediction, annotation: MomentAnnotation)]
    {
        if predictions.isEmpty && annotations.isEmpty { throw .nothingToScore }
        var annotationIndex: [String: Int] = [:]
        annotationIndex.reserveCapacity(annotations.count)
        for (index, annotation) in annotations.enumerated() where annotationIndex[annotation.qid] == nil {
            annotationIndex[annotation.qid] = index
        }
        var pairs: [(prediction: MomentPrediction, annotation: MomentAnnotation)] = []
        pairs.reserveCapacity(predictions.count)
        var extra: [String] = []
        var seen = Set<String>()
        for prediction in predictions {
            guard seen.insert(prediction.qid).inserted else {
                throw .unscorable(qid: prediction.qid, problem: "appears more than once in the submission")
            }
            if let index = annotationIndex[prediction.qid] {
                pairs.append((prediction, annotations[index]))
            } else {
                extra.append(prediction.qid)
            }
        }
        if annotationIndex.count != annotations.count {
            let duplicate = annotations.enumerated().first { annotationIndex[$0.element.qid] != $0.offset }!
            throw .unscorable(qid: duplicate.element.qid, problem: "appears more than once in the ground truth")
        }
        let missing = annotations.map(\.qid).filter { !seen.contains($0) }
        if !missing.isEmpty || !extra.isEmpty { throw .qidMismatch(missing: missing, extra: extra) }
        return pairs
    }
}
