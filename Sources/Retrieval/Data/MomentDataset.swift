import Foundation
import Shards

/// The videos of one split: ids, durations, per-video clip counts, and a `RowSource` the clip features are
/// read from one video at a time. Row `c` of video `i` is clip `c`, `clipLength` seconds long.
public struct VideoSet: Sendable, Equatable {
    public var vids: [String]
    public var durations: [Double]
    public var clipLength: Double
    /// Feature dimensions before the optional temporal endpoint features.
    public var featureDim: Int
    /// Whether the last two dims of every row are `[t/L, (t+1)/L]`.
    public var tef: Bool
    /// Where video i's `[length(i), dim]` rows come from.
    public var source: RowSource
    /// `[count + 1]` clip offsets, starting at 0.
    public var offsets: [Int]
    /// Synthetic data only: the scene each clip's background comes from (for the `erase` mask).
    public var clipScene: [Int32]?
    /// Synthetic data only: `[scenes, featureDim]` raw scene appearance vectors.
    public var sceneVectors: [Float]?
    /// Synthetic data only: the per-dim noise of a clip around its scene vector.
    public var sceneNoise: Float?

    /// A set whose features are held in memory (`[offsets.last, dim]`, row-major).
    public init(vids: [String], durations: [Double], clipLength: Double, featureDim: Int, tef: Bool,
                features: [Float], offsets: [Int], clipScene: [Int32]? = nil, sceneVectors: [Float]? = nil,
                sceneNoise: Float? = nil) {
        self.init(vids: vids, durations: durations, clipLength: clipLength, featureDim: featureDim, tef: tef,
                  source: MemoryRows(values: features, offsets: offsets, width: featureDim + (tef ? 2 : 0)), offsets: offsets,
                  clipScene: clipScene, sceneVectors: sceneVectors, sceneNoise: sceneNoise)
    }

    public init(vids: [String], durations: [Double], clipLength: Double, featureDim: Int, tef: Bool,
                source: RowSource, offsets: [Int], clipScene: [Int32]? = nil, sceneVectors: [Float]? = nil,
                sceneNoise: Float? = nil) {
        self.vids = vids
        self.durations = durations
        self.clipLength = clipLength
        self.featureDim = featureDim
        self.tef = tef
        self.source = source
        self.offsets = offsets
        self.clipScene = clipScene
        self.sceneVectors = sceneVectors
        self.sceneNoise = sceneNoise
    }

    public var count: Int { vids.count }
    public var dim: Int { featureDim + (tef ? 2 : 0) }
    public func length(_ i: Int) -> Int { offsets[i + 1] - offsets[i] }

    /// The rows of video `i`, `[length(i) * dim]`.
    public func clips(_ i: Int) throws -> [Float] { try source.rows(i) }

    /// Appends a video to an in-memory set (`rows` is `[clips * dim]`).
    public mutating func append(vid: String, duration: Double, rows: [Float]) {
        source = MemoryRows.appending(rows, to: &source)
        vids.append(vid)
        durations.append(duration)
        offsets.append(offsets.last! + rows.count / dim)
    }

    /// Every row, in video order (tests and small sets only: it is the whole split in memory).
    public func allRows() throws -> [Float] { try (0..<count).flatMap { try clips($0) } }

    public static func == (a: VideoSet, b: VideoSet) -> Bool {
        a.vids == b.vids && a.durations == b.durations && a.clipLength == b.clipLength && a.featureDim == b.featureDim
            && a.tef == b.tef && a.offsets == b.offsets && a.clipScene == b.clipScene && a.sceneVectors == b.sceneVectors
            && a.sceneNoise == b.sceneNoise && (try? a.allRows()) == (try? b.allRows())
    }
}

/// The queries of one split, each pointing at a video of the split's `VideoSet`. Token features are read one
/// query at a time from `tokenSource`; annotations (windows, saliency) are small and held in memory.
public struct QuerySet: Sendable, Equatable {
    public var qids: [String]
    public var texts: [String]
    public var videoIndex: [Int]
    public var textDim: Int
    /// Where query q's `[tokenCount(q), textDim]` token features come from.
    public var tokenSource: RowSource
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

    /// A set whose token features are held in memory (`[tokenOffsets.last, textDim]`).
    public init(qids: [String], texts: [String], videoIndex: [Int], textDim: Int, tokens: [Float], tokenOffsets: [Int],
                windows: [[[Double]]], hasSaliency: Bool, saliency: [Int32], relevant: [UInt8], clipOffsets: [Int],
                eventType: [Int]? = nil, distractorType: [Int]? = nil, distractorWindows: [[Double]]? = nil) {
        self.init(qids: qids, texts: texts, videoIndex: videoIndex, textDim: textDim,
                  tokenSource: MemoryRows(values: tokens, offsets: tokenOffsets, width: textDim), tokenOffsets: tokenOffsets,
                  windows: windows, hasSaliency: hasSaliency, saliency: saliency, relevant: relevant, clipOffsets: clipOffsets,
                  eventType: eventType, distractorType: distractorType, distractorWindows: distractorWindows)
    }

    public init(qids: [String], texts: [String], videoIndex: [Int], textDim: Int, tokenSource: RowSource, tokenOffsets: [Int],
                windows: [[[Double]]], hasSaliency: Bool, saliency: [Int32], relevant: [UInt8], clipOffsets: [Int],
                eventType: [Int]? = nil, distractorType: [Int]? = nil, distractorWindows: [[Double]]? = nil) {
        self.qids = qids
        self.texts = texts
        self.videoIndex = videoIndex
        self.textDim = textDim
        self.tokenSource = tokenSource
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
    /// The token features of query `q`, `[tokenCount(q) * textDim]`.
    public func tokens(_ q: Int) throws -> [Float] { try tokenSource.rows(q) }

    /// Appends the token rows of a new query to an in-memory set (the other fields are appended by the caller).
    public mutating func appendTokens(_ rows: [Float]) {
        tokenSource = MemoryRows.appending(rows, to: &tokenSource)
        tokenOffsets.append(tokenOffsets.last! + rows.count / max(1, textDim))
    }

    /// The 3 annotators' scores of clip `c` of query `q`'s video.
    public func saliency(_ q: Int, clip c: Int) -> (Int32, Int32, Int32) {
        let row = (clipOffsets[q] + c) * 3
        return (saliency[row], saliency[row + 1], saliency[row + 2])
    }

    public static func == (a: QuerySet, b: QuerySet) -> Bool {
        a.qids == b.qids && a.texts == b.texts && a.videoIndex == b.videoIndex && a.textDim == b.textDim
            && a.tokenOffsets == b.tokenOffsets && a.windows == b.windows && a.hasSaliency == b.hasSaliency
            && a.saliency == b.saliency && a.relevant == b.relevant && a.clipOffsets == b.clipOffsets
            && a.eventType == b.eventType && a.distractorType == b.distractorType && a.distractorWindows == b.distractorWindows
            && (try? (0..<a.count).flatMap { try a.tokens($0) }) == (try? (0..<b.count).flatMap { try b.tokens($0) })
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

    /// The given queries, each with its own entry for its video (one video per query, in query order); the
    /// features are read from this split's sources when used, not copied.
    public func subset(queries picked: [Int]) -> MomentSplit {
        let sources = picked.map { queries.videoIndex[$0] }
        var videoOffsets = [0]
        for v in sources { videoOffsets.append(videoOffsets.last! + videos.length(v)) }
        let v = VideoSet(vids: sources.map { videos.vids[$0] }, durations: sources.map { videos.durations[$0] },
                         clipLength: videos.clipLength, featureDim: videos.featureDim, tef: videos.tef,
                         source: PickedRows(base: videos.source, picks: sources), offsets: videoOffsets,
                         clipScene: videos.clipScene.map { scenes in sources.flatMap { scenes[videos.offsets[$0]..<videos.offsets[$0 + 1]] } },
                         sceneVectors: videos.sceneVectors, sceneNoise: videos.sceneNoise)
        var tokenOffsets = [0], clipOffsets = [0]
        var saliency: [Int32] = [], relevant: [UInt8] = []
        for query in picked {
            tokenOffsets.append(tokenOffsets.last! + queries.tokenCount(query))
            let rows = queries.clipOffsets[query]..<queries.clipOffsets[query + 1]
            saliency += queries.saliency[(rows.lowerBound * 3)..<(rows.upperBound * 3)]
            relevant += queries.relevant[rows]
            clipOffsets.append(clipOffsets.last! + rows.count)
        }
        let q = QuerySet(qids: picked.map { queries.qids[$0] }, texts: picked.map { queries.texts[$0] }, videoIndex: Array(picked.indices),
                         textDim: queries.textDim, tokenSource: PickedRows(base: queries.tokenSource, picks: picked), tokenOffsets: tokenOffsets,
                         windows: picked.map { queries.windows[$0] }, hasSaliency: queries.hasSaliency, saliency: saliency,
                         relevant: relevant, clipOffsets: clipOffsets, eventType: queries.eventType.map { t in picked.map { t[$0] } },
                         distractorType: queries.distractorType.map { t in picked.map { t[$0] } },
                         distractorWindows: queries.distractorWindows.map { w in picked.map { w[$0] } })
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
