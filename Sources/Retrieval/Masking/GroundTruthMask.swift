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

    /// The split with every query's ground-truth clips masked. A video with several queries gets one copy
    /// per query, so each query sees only its own moment removed.
    public func apply(to split: MomentSplit, seed: UInt64 = 7) -> MomentSplit {
        let videos = split.videos, queries = split.queries
        let width = videos.dim, d = videos.featureDim
        var out = split
        out.videos.vids = []
        out.videos.durations = []
        out.videos.features = []
        out.videos.offsets = [0]
        out.videos.clipScene = videos.clipScene == nil ? nil : []
        out.queries.videoIndex = []
        for q in 0..<queries.count {
            let v = queries.videoIndex[q]
            let length = videos.length(v)
            var rows = Array(videos.clips(v))
            let gt = VideoSynthesizer.groundTruthClips(queries.windows[q], clips: length, clipLength: videos.clipLength)
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
            out.videos.vids.append(videos.vids[v])
            out.videos.durations.append(videos.durations[v])
            out.videos.features += rows
            out.videos.offsets.append(out.videos.offsets.last! + length)
            if let scenes = videos.clipScene {
                out.videos.clipScene! += scenes[videos.offsets[v]..<videos.offsets[v + 1]]
            }
            out.queries.videoIndex.append(q)
        }
        return out
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
