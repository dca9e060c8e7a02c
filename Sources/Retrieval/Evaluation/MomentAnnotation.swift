import Foundation

/// One line of a ground-truth file (QVHighlights, or Charades-STA / TACoS in the same layout).
public struct MomentAnnotation: Equatable, Sendable {
    /// The query id; integer qids are kept as their decimal digits.
    public var qid: String
    public var query: String?
    public var vid: String?
    /// Video duration in seconds (an integer in QVHighlights, a float in Charades-STA and TACoS).
    public var duration: Double
    public var relevantWindows: [TimeWindow]
    /// Indices of the annotated 2-second clips; empty for datasets without saliency.
    public var relevantClipIDs: [Int]
    /// For each relevant clip, the three annotators' saliency scores (0-4). Nil for datasets without saliency.
    public var saliencyScores: [[Double]]?

    public init(qid: String, query: String? = nil, vid: String? = nil, duration: Double,
                relevantWindows: [TimeWindow], relevantClipIDs: [Int] = [], saliencyScores: [[Double]]? = nil) {
        self.qid = qid
        self.query = query
        self.vid = vid
        self.duration = duration
        self.relevantWindows = relevantWindows
        self.relevantClipIDs = relevantClipIDs
        self.saliencyScores = saliencyScores
    }

    /// The number of 2-second clips the official evaluation gives the video: `int(duration / 2)`.
    public var clipCount: Int { Int((duration / 2).rounded(.towardZero)) }

    /// The number of annotators whose saliency scores each relevant clip carries.
    public static let annotatorCount = 3
    /// Saliency scores are integers in this range.
    public static let saliencyRange = 0.0...4.0
    /// The longest video accepted (about 11.6 days): evaluation works per 2-s clip, so a corrupt duration must
    /// not size its buffers.
    public static let maxDuration = 1_000_000.0
}
