import Foundation

/// Greedy temporal non-maximum suppression, as Moment-DETR's `temporal_nms`.
public enum TemporalNMS {
    /// Windows by descending score (ties in list order), dropping every window whose IoU with an already kept,
    /// higher-ranked window exceeds `threshold` (strictly: IoU equal to the threshold is kept).
    public static func suppress(_ windows: [ScoredWindow], threshold: Double) -> [ScoredWindow] {
        var kept: [ScoredWindow] = []
        for candidate in rankedByScore(windows) {
            let overlapsKept = kept.contains { candidate.window.intersectionOverUnion($0.window) > threshold }
            if !overlapsKept { kept.append(candidate) }
        }
        return kept
    }

    /// Windows by descending score, ties in list order.
    public static func rankedByScore(_ windows: [ScoredWindow]) -> [ScoredWindow] {
        windows.indices.sorted { lhs, rhs in
            windows[lhs].score > windows[rhs].score || (windows[lhs].score == windows[rhs].score && lhs < rhs)
        }.map { windows[$0] }
    }
}
