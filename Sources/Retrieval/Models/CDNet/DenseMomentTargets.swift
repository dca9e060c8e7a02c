import NN
import Tensor

/// Per-clip supervision of a batch for CDNet's dense head and its contrastive terms.
///
/// Clip geometry: a sample with `n` valid clips is taken as `n` equal clips over its duration, so clip
/// `t` has the normalised centre `(t + 0.5) / n` (exact for QVHighlights' 2 s clips, whose duration is
/// `2 n`). A clip is *positive* when its centre lies inside one of the sample's ground-truth windows; a
/// window too short to contain any centre makes the clip containing its own centre positive, so that
/// every window has at least one. A positive clip's window is the shortest one containing its centre (or
/// the short window it stands for); its boundary targets are the distances from its centre to that
/// window's start and end (fractions of the duration, floored at 0 for a centre outside its short window).
/// Valid clips that are not positive are the *negatives* of the focal and contrastive losses.
public struct DenseMomentTargets: Sendable {
    public let batch: Int
    public let length: Int
    /// `[B, Lv]`: 1 at positive clips, 0 elsewhere (padding included).
    public let positive: Tensor
    /// `[B, Lv]`: 1 at valid clips that are not positive.
    public let negative: Tensor
    /// Flat indices `b * Lv + t` of the positive clips, in row-major order.
    public let positiveIndices: [Int]
    /// Per positive clip (parallel to `positiveIndices`): normalised clip centre, the `(left, right)`
    /// distances to its window's boundaries, and the window itself (normalised start and end).
    public let clipCenters: [Float]
    public let leftOffsets: [Float]
    public let rightOffsets: [Float]
    public let windowStarts: [Float]
    public let windowEnds: [Float]
    /// Flat indices of every valid clip, in row-major order.
    public let validIndices: [Int]

    public init(windows: [[SpanTarget]], videoMask: Tensor) {
        let (batch, length) = (videoMask.shape[0], videoMask.shape[1])
        precondition(windows.count == batch, "DenseMomentTargets: \(windows.count) window lists for \(batch) videos")
        var positive = Tensor(zeros: [batch, length]), negative = Tensor(zeros: [batch, length])
        var indices: [Int] = [], centers: [Float] = [], lefts: [Float] = [], rights: [Float] = [], valid: [Int] = []
        var starts: [Float] = [], ends: [Float] = []
        for b in 0..<batch {
            let n = CDNetOps.validCount(videoMask, row: b)
            let spans = windows[b].map { (start: $0.center - $0.width / 2, end: $0.center + $0.width / 2) }
            var owner = [Int?](repeating: nil, count: n)
            for t in 0..<n {
                let center = Self.clipCenter(t, validClips: n)
                let containing = spans.indices.filter { spans[$0].start <= center && center <= spans[$0].end }
                owner[t] = containing.min { spans[$0].end - spans[$0].start < spans[$1].end - spans[$1].start }
            }
            for (w, span) in spans.enumerated() where !owner.contains(w) && n > 0 {
                let t = min(max(Int(((span.start + span.end) / 2 * Float(n)).rounded(.down)), 0), n - 1)
                if owner[t] == nil { owner[t] = w }
            }
            for t in 0..<n {
                valid.append(b * length + t)
                guard let w = owner[t] else { negative[b, t] = 1; continue }
                positive[b, t] = 1
                let center = Self.clipCenter(t, validClips: n)
                indices.append(b * length + t)
                centers.append(center)
                lefts.append(max(center - spans[w].start, 0))
                rights.append(max(spans[w].end - center, 0))
                starts.append(spans[w].start)
                ends.append(spans[w].end)
            }
        }
        self.batch = batch
        self.length = length
        self.positive = positive
        self.negative = negative
        positiveIndices = indices
        clipCenters = centers
        leftOffsets = lefts
        rightOffsets = rights
        windowStarts = starts
        windowEnds = ends
        validIndices = valid
    }

    /// Normalised centre of clip `t` of a video with `validClips` clips.
    public static func clipCenter(_ t: Int, validClips: Int) -> Float {
        (Float(t) + 0.5) / Float(validClips)
    }

    /// The positive clips of sample `b`.
    public func positiveClips(of b: Int) -> [Int] {
        (0..<length).filter { positive[b, $0] > 0.5 }
    }

    /// One positive clip per sample drawn uniformly (nil for a sample without any), the anchor of the
    /// contrastive terms. One draw per sample of the whole batch, so a slice of a batch (`rows`) draws them
    /// all and keeps its own samples' anchors.
    public func samplePositiveClips(generator: inout SeededGenerator, rows: BatchRows? = nil) -> [Int?] {
        let draws = (0..<(rows?.whole ?? batch)).map { _ in generator.next() }
        return (0..<batch).map { b in
            let clips = positiveClips(of: b)
            return clips.isEmpty ? nil : clips[Int(draws[rows?.wholeRow(b) ?? b] % UInt64(clips.count))]
        }
    }
}
