import Foundation

/// Model outputs as QVHighlights submission lines, post-processed as the reference does: windows clamped
/// to [0, duration], their ends rounded to clip multiples (a window is at least one clip long), sorted by
/// score, at most 10; one saliency score per clip.
public enum SubmissionWriter {
    public static func predictions(_ split: MomentSplit, queries: [Int], retrievals: [MomentRetrieval],
                                   maxWindows: Int = 10) -> [MomentPrediction] {
        zip(queries, retrievals).map { query, r in
            let v = split.queries.videoIndex[query]
            let duration = split.videos.durations[v]
            let clip = split.videos.clipLength
            let windows = r.windows.sorted { $0.score > $1.score }.prefix(maxWindows).map { w -> ScoredWindow in
                var start = (Double(w.start) / clip).rounded() * clip
                var end = (Double(w.end) / clip).rounded() * clip
                start = min(max(0, start), duration)
                end = min(max(0, end), duration)
                if end - start < clip {
                    end = min(duration, start + clip)
                    start = max(0, end - clip)
                }
                return ScoredWindow(start: start, end: end, score: Double(w.score))
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
