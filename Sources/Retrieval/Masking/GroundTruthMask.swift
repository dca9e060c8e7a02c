import Foundation
import Tensor

/// Masked (spurious) evaluation inputs (TD-DETR table 2): a copy of a split whose ground-truth clips no
/// longer show the moment. Durations, lengths and temporal endpoint dims stay as they were, so only the
/// content of the moment changes.
public enum GroundTruthMask: String, Sendable, CaseIterable {
    /// The paper's mask: ground-truth clips' features set to zero.
    case zero
    /// Context kept: on synthetic data each ground-truth clip becomes its scene's background plus noise
    /// (what the clip would show without the event); on real data, the nearest non-ground-truth clip of
    /// the same video. Zeros are out of distribution and mark the moment's exact boundaries; this is not.
    case erase

    /// The split with every query's ground-truth clips masked. A video with several queries gets one entry
    /// per query, so each query sees only its own moment removed. The masked clips are made when a batch reads
    /// them, not stored.
    public func apply(to split: MomentSplit, seed: UInt64 = 7) -> MomentSplit {
        let videos = split.videos, queries = split.queries
        var out = split
        let sources = queries.videoIndex
        out.videos.vids = sources.map { videos.vids[$0] }
        out.videos.durations = sources.map { videos.durations[$0] }
        var offsets = [0]
        for v in sources { offsets.append(offsets.last! + videos.length(v)) }
        out.videos.offsets = offsets
        out.videos.clipScene = videos.clipScene.map { scenes in sources.flatMap { scenes[videos.offsets[$0]..<videos.offsets[$0 + 1]] } }
        out.videos.source = MaskedClips(base: videos, queries: queries, mask: self, seed: seed)
        out.queries.videoIndex = Array(0..<queries.count)
        return out
    }

    /// Video `v`'s rows with query `q`'s ground-truth clips masked.
    func masked(_ videos: VideoSet, video v: Int, windows: [[Double]], query q: Int, seed: UInt64) throws -> [Float] {
        let width = videos.dim, d = videos.featureDim
        let length = videos.length(v)
        var rows = try videos.clips(v)
        let gt = VideoSynthesizer.groundTruthClips(windows, clips: length, clipLength: videos.clipLength)
        var g = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(q))
        for c in 0..<length where gt[c] {
            let replacement: [Float]
            switch self {
            case .zero:
                replacement = [Float](repeating: 0, count: d)
            case .erase:
                if let scenes = videos.sceneVectors, let clipScene = videos.clipScene {
                    let scene = Int(clipScene[videos.offsets[v] + c])
                    let noise = videos.sceneNoise ?? 0
                    var x = (0..<d).map { scenes[scene * d + $0] + noise * g.nextNormal() }
                    var norm: Float = 0
                    for value in x { norm += value * value }
                    let inv = 1 / (norm.squareRoot() + 1e-5)
                    for j in 0..<d { x[j] *= inv }
                    replacement = x
                } else if let source = Self.nearestContextClip(c, groundTruth: gt) {
                    replacement = Array(rows[(source * width)..<(source * width + d)])
                } else {
                    replacement = [Float](repeating: 0, count: d)
                }
            }
            for j in 0..<d { rows[c * width + j] = replacement[j] }
        }
        return rows
    }

    /// The closest clip outside the ground truth (earlier one on a tie), or nil when every clip is ground truth.
    static func nearestContextClip(_ c: Int, groundTruth gt: [Bool]) -> Int? {
        for distance in 1..<max(2, gt.count) {
            if c - distance >= 0 && !gt[c - distance] { return c - distance }
            if c + distance < gt.count && !gt[c + distance] { return c + distance }
        }
        return nil
    }
}

/// Entry q of a masked split: query q's video with its ground-truth clips masked, made on each read.
final class MaskedClips: RowSource, @unchecked Sendable {
    let base: VideoSet
    let queries: QuerySet
    let mask: GroundTruthMask
    let seed: UInt64

    init(base: VideoSet, queries: QuerySet, mask: GroundTruthMask, seed: UInt64) {
        self.base = base
        self.queries = queries
        self.mask = mask
        self.seed = seed
    }

    func rows(_ q: Int) throws -> [Float] {
        try mask.masked(base, video: queries.videoIndex[q], windows: queries.windows[q], query: q, seed: seed)
    }
}
