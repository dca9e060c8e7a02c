import Foundation
import Tensor

/// Turns queries of a split into a padded `MomentBatch`: videos cut to `maxClips` and padded to the
/// longest in the batch, text cut to `maxTokens`, windows normalised by the kept duration, saliency
/// targets (summed annotator scores and the reference's hard/easy clip pairs) when the split has them.
/// A training batch keeps at most `maxWindows` ground-truth windows per query, a random `maxWindows` when
/// there are more, as the reference's data loader does (261 of QVHighlights' 7,218 training queries have 6-24).
public struct BatchBuilder: Sendable {
    public var maxClips: Int
    public var maxTokens: Int
    public var maxWindows: Int

    public init(maxClips: Int = 75, maxTokens: Int = 32, maxWindows: Int = 5) {
        precondition(maxWindows >= 1, "BatchBuilder: maxWindows must be at least 1, got \(maxWindows)")
        self.maxClips = maxClips
        self.maxTokens = maxTokens
        self.maxWindows = maxWindows
    }

    /// `maxWindows` of `windows` drawn without replacement by `generator` (all of them, in order, when there
    /// are no more than that).
    public func cappedWindows(_ windows: [[Double]], generator: inout SeededGenerator) -> [[Double]] {
        guard windows.count > maxWindows else { return windows }
        var pool = windows
        for i in 0..<maxWindows {
            let j = i + Int(generator.next() % UInt64(pool.count - i))
            pool.swapAt(i, j)
        }
        return Array(pool[0..<maxWindows])
    }

    /// `generator` draws the saliency pairs and the windows kept of a query that has more than `maxWindows`;
    /// without it (evaluation) every window is kept and no saliency targets are built.
    public func batch(_ split: MomentSplit, queries: [Int], generator: inout SeededGenerator?) throws -> MomentBatch {
        let videos = split.videos, q = split.queries
        let b = queries.count
        let lengths = queries.map { min(videos.length(q.videoIndex[$0]), maxClips) }
        let tokenCounts = queries.map { min(q.tokenCount($0), maxTokens) }
        let lv = max(1, lengths.max() ?? 1), lq = max(1, tokenCounts.max() ?? 1)
        let dv = videos.dim, dt = q.textDim
        var video = Tensor(zeros: [b, lv, dv]), videoMask = Tensor(zeros: [b, lv])
        var text = Tensor(zeros: [b, lq, dt]), textMask = Tensor(zeros: [b, lq])
        var windows: [[SpanTarget]] = []
        var durations: [Float] = []
        var scores = Tensor(zeros: [b, lv])
        var positives: [[Int]] = [], negatives: [[Int]] = []
        let withSaliency = q.hasSaliency && generator != nil
        for (row, query) in queries.enumerated() {
            let clips = try videos.clips(q.videoIndex[query])
            let tokens = try q.tokens(query)
            if lengths[row] > 0 {
                video.withUnsafeMutableBufferPointer { vb in
                    clips.withUnsafeBufferPointer { (vb.baseAddress! + row * lv * dv).update(from: $0.baseAddress!, count: lengths[row] * dv) }
                }
            }
            if tokenCounts[row] > 0 {
                text.withUnsafeMutableBufferPointer { tb in
                    tokens.withUnsafeBufferPointer { (tb.baseAddress! + row * lq * dt).update(from: $0.baseAddress!, count: tokenCounts[row] * dt) }
                }
            }
        }
        for (row, query) in queries.enumerated() {
            let v = q.videoIndex[query]
            for t in 0..<lengths[row] { videoMask[row, t] = 1 }
            for t in 0..<tokenCounts[row] { textMask[row, t] = 1 }
            // Windows are normalised by the duration the kept clips cover (the whole video unless cut).
            let duration = min(videos.durations[v], Double(lengths[row]) * videos.clipLength)
            durations.append(Float(duration))
            let kept = generator == nil ? q.windows[query] : cappedWindows(q.windows[query], generator: &generator!)
            windows.append(kept.compactMap { w in
                let start = min(w[0], duration), end = min(w[1], duration)
                return end > start ? SpanTarget(start: Float(start), end: Float(end), duration: Float(duration)) : nil
            })
            if withSaliency {
                var relevant: [Int] = [], summed: [Float] = []
                for c in 0..<lengths[row] {
                    let s = q.saliency(query, clip: c)
                    let total = Float(s.0 + s.1 + s.2)
                    scores[row, c] = total
                    if q.relevant[q.clipOffsets[query] + c] != 0 {
                        relevant.append(c)
                        summed.append(total)
                    }
                }
                if relevant.isEmpty {
                    // No annotated clip survives the cut: pair the first clip with itself (a zero hinge).
                    positives.append([0, 0])
                    negatives.append([0, 0])
                } else {
                    let pairs = SaliencyPairSampler.sample(relevantClips: relevant, summedScores: summed,
                                                           clipCount: lengths[row], generator: &generator!)
                    positives.append(pairs.positives)
                    negatives.append(pairs.negatives)
                }
            }
        }
        let saliency = withSaliency ? SaliencyTargets(scores: scores, positiveClips: positives, negativeClips: negatives) : nil
        return MomentBatch(videoFeatures: video, videoMask: videoMask, textFeatures: text, textMask: textMask,
                           windows: windows, saliency: saliency, durations: durations)
    }
}
