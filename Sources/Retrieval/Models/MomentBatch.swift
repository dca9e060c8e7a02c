import NN
import Tensor

/// One ground-truth moment, normalised by the video duration: center and width in `[0, 1]`.
public struct SpanTarget: Sendable, Equatable {
    public var center: Float
    public var width: Float

    public init(center: Float, width: Float) {
        self.center = center
        self.width = width
    }

    /// A window `[start, end]` in seconds of a video lasting `duration` seconds.
    public init(start: Float, end: Float, duration: Float) {
        precondition(duration > 0 && end >= start, "SpanTarget: window [\(start), \(end)] with duration \(duration)")
        let s = min(max(start / duration, 0), 1), e = min(max(end / duration, 0), 1)
        self.init(center: (s + e) / 2, width: e - s)
    }
}

/// Saliency supervision of a batch: per-clip summed annotator scores and the sampled clip pairs of
/// the hinge loss.
public struct SaliencyTargets: Sendable, Equatable {
    /// `[B, Lv]` summed scores of the 3 annotators (0-12) per clip, 0 outside the relevant clips.
    public var scores: Tensor
    /// `B` rows of `P` clip indices each (positives of the hinge pairs).
    public var positiveClips: [[Int]]
    /// `B` rows of `P` clip indices each (negatives of the hinge pairs).
    public var negativeClips: [[Int]]

    public init(scores: Tensor, positiveClips: [[Int]], negativeClips: [[Int]]) {
        self.scores = scores
        self.positiveClips = positiveClips
        self.negativeClips = negativeClips
    }
}

/// A padded training or evaluation batch. Masks are `1` on valid clips/tokens and `0` on padding.
public struct MomentBatch: Sendable {
    /// `[B, Lv, Dv]`.
    public var videoFeatures: Tensor
    /// `[B, Lv]`.
    public var videoMask: Tensor
    /// `[B, Lq, Dt]`.
    public var textFeatures: Tensor
    /// `[B, Lq]`.
    public var textMask: Tensor
    /// Per sample, its ground-truth windows (may be empty at inference).
    public var windows: [[SpanTarget]]
    /// Saliency targets, or nil when the batch has none (the saliency losses are then skipped).
    public var saliency: SaliencyTargets?
    /// Per sample, the video duration in seconds (to turn predictions back into seconds).
    public var durations: [Float]
    /// Set when the batch is one rank's slice of a larger batch (data-parallel training).
    public var slice: BatchSlice?

    public init(videoFeatures: Tensor, videoMask: Tensor, textFeatures: Tensor, textMask: Tensor,
                windows: [[SpanTarget]], saliency: SaliencyTargets?, durations: [Float]) {
        precondition(videoFeatures.rank == 3 && textFeatures.rank == 3,
                     "MomentBatch: features must be [B, L, D], got video \(videoFeatures.shape), text \(textFeatures.shape)")
        let batch = videoFeatures.shape[0]
        checkSameShape(videoMask.shape, [batch, videoFeatures.shape[1]], "MomentBatch video mask")
        checkSameShape(textMask.shape, [batch, textFeatures.shape[1]], "MomentBatch text mask")
        precondition(textFeatures.shape[0] == batch && windows.count == batch && durations.count == batch,
                     "MomentBatch: \(batch) videos but \(textFeatures.shape[0]) queries, \(windows.count) window lists, \(durations.count) durations")
        if let saliency {
            checkSameShape(saliency.scores.shape, videoMask.shape, "MomentBatch saliency scores")
            precondition(saliency.positiveClips.count == batch && saliency.negativeClips.count == batch,
                         "MomentBatch: saliency pairs for \(saliency.positiveClips.count) samples, batch is \(batch)")
        }
        self.videoFeatures = videoFeatures
        self.videoMask = videoMask
        self.textFeatures = textFeatures
        self.textMask = textMask
        self.windows = windows
        self.saliency = saliency
        self.durations = durations
    }

    public var batchSize: Int { videoFeatures.shape[0] }
    public var videoLength: Int { videoFeatures.shape[1] }

    /// Number of valid clips of sample `b`.
    public func validClipCount(_ b: Int) -> Int {
        var count = 0
        for t in 0..<videoLength where videoMask[b, t] > 0.5 { count += 1 }
        return count
    }
}

/// The hinge-loss clip pairs of one sample as the reference data loader draws them: a hard pair (the
/// relevant clip with the highest summed score vs the relevant clip with the lowest) and an easy pair
/// (a random relevant clip vs a random clip outside the relevant ones; the hard pair again when every
/// clip is relevant).
public enum SaliencyPairSampler {
    /// `relevantClips` and `summedScores` are parallel (clip index, sum of the annotators' scores);
    /// `clipCount` is the number of valid clips. Returns one positive and one negative per pair.
    public static func sample(relevantClips: [Int], summedScores: [Float], clipCount: Int,
                              generator: inout SeededGenerator) -> (positives: [Int], negatives: [Int]) {
        precondition(!relevantClips.isEmpty && relevantClips.count == summedScores.count,
                     "SaliencyPairSampler: \(relevantClips.count) relevant clips with \(summedScores.count) scores")
        precondition(clipCount > 0, "SaliencyPairSampler: no clips")
        // Stable ascending order of scores, as numpy's argsort on ties keeps the first.
        let order = relevantClips.indices.sorted { summedScores[$0] < summedScores[$1] || (summedScores[$0] == summedScores[$1] && $0 < $1) }
        let hardPositive = min(relevantClips[order.last!], clipCount - 1)
        let hardNegative = min(relevantClips[order.first!], clipCount - 1)
        let relevant = Set(relevantClips)
        let outside = (0..<clipCount).filter { !relevant.contains($0) }
        guard !outside.isEmpty else {
            return ([hardPositive, hardPositive], [hardNegative, hardNegative])
        }
        let easyPositive = min(relevantClips[Int(generator.next() % UInt64(relevantClips.count))], clipCount - 1)
        let easyNegative = outside[Int(generator.next() % UInt64(outside.count))]
        return ([hardPositive, easyPositive], [hardNegative, easyNegative])
    }
}

/// What a slice of a larger batch needs so that its losses are exactly its share of the larger batch's: the
/// criterion then divides by the whole batch's sample and matched-pair counts (so the slices' losses and
/// gradients sum over ranks to the whole batch's), and the negative pairing rolls the whole batch's text.
public struct BatchSlice: Sendable {
    /// Samples in the whole batch.
    public var wholeSize: Int
    /// Ground-truth windows of every sample of the whole batch (the span losses are means over matched pairs).
    public var wholeWindowCounts: [Int]
    /// `[1, Lq, D]` features and `[1, Lq]` mask of the text of the whole batch's sample after the slice's last
    /// (the first sample after the last): the last video's negative partner.
    public var nextText: Tensor
    public var nextTextMask: Tensor

    public init(wholeSize: Int, wholeWindowCounts: [Int], nextText: Tensor, nextTextMask: Tensor) {
        self.wholeSize = wholeSize
        self.wholeWindowCounts = wholeWindowCounts
        self.nextText = nextText
        self.nextTextMask = nextTextMask
    }
}
