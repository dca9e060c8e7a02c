import Foundation

/// Model outputs as QVHighlights submission lines, post-processed as the reference's `PostProcessorDETR`
/// (`clip_ts`, then `round_multiple`): each end clamped to [0, duration], then rounded to the nearest clip
/// multiple (half to even, as `torch.round`), so a window shorter than half a clip may become empty, as
/// there; sorted by score, at most 10; one saliency score per clip.
public enum SubmissionWriter {
    public static func predictions(_ split: MomentSplit, queries: [Int], retrievals: [MomentRetrieval],
                                   maxWindows: Int = 10) -> [MomentPrediction] {
        zip(queries, retrievals).map { query, r in
            let v = split.queries.videoIndex[query]
            let duration = split.videos.durations[v]
            let clip = split.videos.clipLength
            let windows = r.windows.sorted { $0.score > $1.score }.prefix(maxWindows).map { w -> ScoredWindow in
                func processed(_ t: Float) -> Double { (min(max(0, Double(t)), duration) / clip).rounded(.toNearestOrEven) * clip }
                return ScoredWindow(start: processed(w.start), end: processed(w.end), score: Double(w.score))
            }
            return MomentPrediction(qid: split.queries.qids[query], query: split.queries.texts[query], vid: split.videos.vids[v],
                                    windows: Array(windows), saliencyScores: r.saliency.map(Double.init))
        }
    }

    /// One JSON object per line, in the official submission format.
    public static func jsonl(_ predictions: [MomentPrediction]) -> String {
        predictions.map { p in
            var fields = ["\"qid\": \(Int(p.qid) != nil ? p.qid : MomentSplit.jsonString(p.qid))"]
            if let query = p.query { fields.append("\"query\": \(MomentSplit.jsonString(query))") }
            if let vid = p.vid { fields.append("\"vid\": \(MomentSplit.jsonString(vid))") }
            if let windows = p.windows {
                fields.append("\"pred_relevant_windows\": [" + windows.map {
                    "[\(number($0.window.start)), \(number($0.window.end)), \(number($0.score))]"
                }.joined(separator: ", ") + "]")
            }
            if let saliency = p.saliencyScores {
                fields.append("\"pred_saliency_scores\": [" + saliency.map(number).joined(separator: ", ") + "]")
            }
            return "{" + fields.joined(separator: ", ") + "}"
        }.joined(separator: "\n") + "\n"
    }

    static func number(_ d: Double) -> String {
        return d.rounded() == d && abs(d) < 1e15 ? String(format: "%.1f", d) : String(format: "%.4f", d)
    }
}
