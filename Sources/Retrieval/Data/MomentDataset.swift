import Foundation
import Shards

/// The videos of one split: per-clip features stored CSR-style (rows of all videos concatenated),
/// durations in seconds and ids. Row `i` of the features is one clip of `clipLength` seconds.
public struct VideoSet: Sendable, Equatable {
    public var vids: [String]
    public var durations: [Double]
    public var clipLength: Double
    /// Feature dimensions before the optional temporal endpoint features.
    public var featureDim: Int
    /// Whether the last two dims of every row are `[t/L, (t+1)/L]`.
    public var tef: Bool
    /// `[offsets.last, dim]`, row-major.
    public var features: [Float]
    /// `[count + 1]`, starting at 0.
    public var offsets: [Int]
    /// Synthetic data only: the scene each clip's background comes from (for the `erase` mask).
    public var clipScene: [Int32]?
    /// Synthetic data only: `[scenes, featureDim]` raw scene appearance vectors.
    public var sceneVectors: [Float]?
    /// Synthetic data only: the per-dim noise of a clip around its scene vector.
    public var sceneNoise: Float?

    public init(vids: [String], durations: [Double], clipLength: Double, featureDim: Int, tef: Bool,
                features: [Float], offsets: [Int], clipScene: [Int32]? = nil, sceneVectors: [Float]? = nil,
                sceneNoise: Float? = nil) {
        self.vids = vids
        self.durations = durations
        self.clipLength = clipLength
        self.featureDim = featureDim
        self.tef = tef
        self.features = features
        self.offsets = offsets
        self.clipScene = clipScene
        self.sceneVectors = sceneVectors
        self.sceneNoise = sceneNoise
    }

    public var count: Int { vids.count }
    public var dim: Int { featureDim + (tef ? 2 : 0) }
    public func length(_ i: Int) -> Int { offsets[i + 1] - offsets[i] }

    /// The rows of video `i`, `[length(i) * dim]`.
    public func clips(_ i: Int) -> ArraySlice<Float> { features[(offsets[i] * dim)..<(offsets[i + 1] * dim)] }
}

/// The queries of one split, each pointing at a video of the split's `VideoSet`.
public struct QuerySet: Sendable, Equatable {
    public var qids: [String]
    public var texts: [String]
    public var videoIndex: [Int]
    public var textDim: Int
    /// Token features, `[tokenOffsets.last, textDim]`.
    public var tokens: [Float]
    public var tokenOffsets: [Int]
    /// Relevant windows in seconds, per query.
    public var windows: [[[Double]]]
    /// Whether the queries carry highlight (saliency) annotations.
    public var hasSaliency: Bool
    /// Per query, per clip of its video: 3 annotators' 0-4 scores, `[sum of video lengths, 3]`.
    public var saliency: [Int32]
    /// Per query, per clip of its video: 1 for the annotated relevant clip ids.
    public var relevant: [UInt8]
    /// `[count + 1]` row offsets into `saliency` / `relevant` (rows = clips of the query's video).
    public var clipOffsets: [Int]
    /// Synthetic data only: the queried event type, the distractor event type and its window (seconds).
    public var eventType: [Int]?
    public var distractorType: [Int]?
    public var distractorWindows: [[Double]]?

    public init(qids: [String], texts: [String], videoIndex: [Int], textDim: Int, tokens: [Float], tokenOffsets: [Int],
                windows: [[[Double]]], hasSaliency: Bool, saliency: [Int32], relevant: [UInt8], clipOffsets: [Int],
                eventType: [Int]? = nil, distractorType: [Int]? = nil, distractorWindows: [[Double]]? = nil) {
        self.qids = qids
        self.texts = texts
        self.videoIndex = videoIndex
        self.textDim = textDim
        self.tokens = tokens
        self.tokenOffsets = tokenOffsets
        self.windows = windows
        self.hasSaliency = hasSaliency
        self.saliency = saliency
        self.relevant = relevant
        self.clipOffsets = clipOffsets
        self.eventType = eventType
        self.distractorType = distractorType
        self.distractorWindows = distractorWindows
    }

    public var count: Int { qids.count }
    public func tokenCount(_ q: Int) -> Int { tokenOffsets[q + 1] - tokenOffsets[q] }
    public func tokens(_ q: Int) -> ArraySlice<Float> { tokens[(tokenOffsets[q] * textDim)..<(tokenOffsets[q + 1] * textDim)] }

    /// The 3 annotators' scores of clip `c` of query `q`'s video.
    public func saliency(_ q: Int, clip c: Int) -> (Int32, Int32, Int32) {
        let row = (clipOffsets[q] + c) * 3
        return (saliency[row], saliency[row + 1], saliency[row + 2])
    }
}

/// One split: its videos and queries.
public struct MomentSplit: Sendable, Equatable {
    public var name: String
    public var videos: VideoSet
    public var queries: QuerySet

    public init(name: String, videos: VideoSet, queries: QuerySet) {
        self.name = name
        self.videos = videos
        self.queries = queries
    }

    /// The given queries with their own copies of their videos (one video per query, in query order).
    public func subset(queries picked: [Int]) -> MomentSplit {
        var v = VideoSet(vids: [], durations: [], clipLength: videos.clipLength, featureDim: videos.featureDim, tef: videos.tef,
                         features: [], offsets: [0], sceneNoise: videos.sceneNoise)
        var q = QuerySet(qids: [], texts: [], videoIndex: [], textDim: queries.textDim, tokens: [], tokenOffsets: [0], windows: [],
                         hasSaliency: queries.hasSaliency, saliency: [], relevant: [], clipOffsets: [0],
                         eventType: queries.eventType == nil ? nil : [])
        for (i, query) in picked.enumerated() {
            let source = queries.videoIndex[query]
            v.vids.append(videos.vids[source])
            v.durations.append(videos.durations[source])
            v.features += videos.clips(source)
            v.offsets.append(v.offsets.last! + videos.length(source))
            q.qids.append(queries.qids[query])
            q.texts.append(queries.texts[query])
            q.videoIndex.append(i)
            q.tokens += queries.tokens(query)
            q.tokenOffsets.append(q.tokenOffsets.last! + queries.tokenCount(query))
            q.windows.append(queries.windows[query])
            let rows = queries.clipOffsets[query]..<queries.clipOffsets[query + 1]
            q.saliency += queries.saliency[(rows.lowerBound * 3)..<(rows.upperBound * 3)]
            q.relevant += queries.relevant[rows]
            q.clipOffsets.append(q.clipOffsets.last! + rows.count)
            if let types = queries.eventType { q.eventType!.append(types[query]) }
        }
        return MomentSplit(name: name, videos: v, queries: q)
    }

    /// The ground truth of the split in the QVHighlights annotation format, one JSON object per line.
    public func annotationLines() -> [String] {
        (0..<queries.count).map { q in
            let v = queries.videoIndex[q]
            var fields: [(String, String)] = [
                ("qid", Int(queries.qids[q]) != nil ? queries.qids[q] : Self.jsonString(queries.qids[q])),
                ("query", Self.jsonString(queries.texts[q])),
                ("duration", Self.number(videos.durations[v])),
                ("vid", Self.jsonString(videos.vids[v])),
                ("relevant_windows", "[" + queries.windows[q].map { "[\(Self.number($0[0])), \(Self.number($0[1]))]" }.joined(separator: ", ") + "]"),
            ]
            if queries.hasSaliency {
                var ids: [Int] = []
                var scores: [String] = []
                for c in 0..<videos.length(v) where queries.relevant[queries.clipOffsets[q] + c] != 0 {
                    ids.append(c)
                    let s = queries.saliency(q, clip: c)
                    scores.append("[\(s.0), \(s.1), \(s.2)]")
                }
                fields.append(("relevant_clip_ids", "[" + ids.map(String.init).joined(separator: ", ") + "]"))
                fields.append(("saliency_scores", "[" + scores.joined(separator: ", ") + "]"))
            }
            return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        }
    }

    static func number(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
    }

    static func jsonString(_ s: String) -> String { JSONValue.string(s).canonical }
}
