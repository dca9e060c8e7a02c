import Foundation

/// One line of a submission file: the windows and clip saliency scores a model predicts for one query.
public struct MomentPrediction: Equatable, Sendable {
    /// The query id; integer qids are kept as their decimal digits.
    public var qid: String
    public var query: String?
    public var vid: String?
    /// `pred_relevant_windows` in file order (the official R1 uses the first one as listed, not the best
    /// scored). Nil when the submission has no moment-retrieval predictions.
    public var windows: [ScoredWindow]?
    /// `pred_saliency_scores`, one per 2-second clip. Nil when the submission has no highlight predictions.
    public var saliencyScores: [Double]?

    public init(qid: String, query: String? = nil, vid: String? = nil,
                windows: [ScoredWindow]?, saliencyScores: [Double]? = nil) {
        self.qid = qid
        self.query = query
        self.vid = vid
        self.windows = windows
        self.saliencyScores = saliencyScores
    }
}
