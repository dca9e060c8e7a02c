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

    /// Saliency targets of a query without annotator scores, as the reference's
    /// `get_saliency_labels_sub_as_query` builds them for Charades-STA and TACoS: the clips of `window`
    /// (seconds) score 1, two distinct random clips inside it are the positives (the one clip twice when the
    /// window covers one), two distinct random clips outside it the negatives (the positives when fewer than two
    /// clips lie outside).
    public static func windowSaliencyPairs(window: [Double], clipLength: Double, clips: Int,
                                           generator: inout SeededGenerator) -> (inside: Range<Int>, positives: [Int], negatives: [Int]) {
        precondition(clips > 0 && window.count == 2, "windowSaliencyPairs: \(clips) clips, window \(window)")
        let last = max(0, min(Int(window[1] / clipLength), clips) - 1)
        let first = min(max(0, Int(window[0] / clipLength)), last)
        func twoOf(_ pool: [Int]) -> [Int] {
            let i = Int(generator.next() % UInt64(pool.count))
            var j = Int(generator.next() % UInt64(pool.count - 1))
            if j >= i { j += 1 }
            return [pool[i], pool[j]]
        }
        let positives = first == last ? [first, first] : twoOf(Array(first...last))
        let outside = Array(0..<first) + Array((last + 1)..<clips)
        return (first..<(last + 1), positives, outside.count >= 2 ? twoOf(outside) : positives)
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
        // Training batches always carry saliency targets: annotated ones, or for a grounding dataset (no
        // saliency_scores) the ones the reference derives from the first window.
        let withSaliency = generator != nil
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
            if withSaliency && !q.hasSaliency {
                let window = kept.first ?? q.windows[query].first ?? [0, 0]
                let pairs = Self.windowSaliencyPairs(window: window, clipLength: videos.clipLength, clips: lengths[row],
                                                     generator: &generator!)
                for c in pairs.inside { scores[row, c] = 1 }
                positives.append(pairs.positives)
                negatives.append(pairs.negatives)
            } else if withSaliency {
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
