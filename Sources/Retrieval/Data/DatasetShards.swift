import Foundation
import Shards

/// One query as a data source produces it, for a `SplitSink`.
public struct QueryRecord: Sendable {
    public var qid: String
    public var text: String
    /// Index of its video among the videos added so far.
    public var videoIndex: Int
    /// `[tokens * textDim]`.
    public var tokens: [Float]
    public var windows: [[Double]]
    /// Per clip of its video: 3 annotators' scores, `[clips * 3]`.
    public var saliency: [Int32]
    /// Per clip of its video: 1 for an annotated relevant clip.
    public var relevant: [UInt8]
    public var eventType: Int?
    public var distractorType: Int?
    public var distractorWindow: [Double]?

    public init(qid: String, text: String, videoIndex: Int, tokens: [Float], windows: [[Double]], saliency: [Int32],
                relevant: [UInt8], eventType: Int? = nil, distractorType: Int? = nil, distractorWindow: [Double]? = nil) {
        self.qid = qid
        self.text = text
        self.videoIndex = videoIndex
        self.tokens = tokens
        self.windows = windows
        self.saliency = saliency
        self.relevant = relevant
        self.eventType = eventType
        self.distractorType = distractorType
        self.distractorWindow = distractorWindow
    }
}

/// What describes a split as a whole, known once its records are produced.
public struct SplitInfo: Sendable {
    public var clipLength: Double
    public var featureDim: Int
    public var tef: Bool
    public var textDim: Int
    public var hasSaliency: Bool
    public var sceneVectors: [Float]?
    public var sceneNoise: Float?

    public init(clipLength: Double, featureDim: Int, tef: Bool, textDim: Int, hasSaliency: Bool,
                sceneVectors: [Float]? = nil, sceneNoise: Float? = nil) {
        self.clipLength = clipLength
        self.featureDim = featureDim
        self.tef = tef
        self.textDim = textDim
        self.hasSaliency = hasSaliency
        self.sceneVectors = sceneVectors
        self.sceneNoise = sceneNoise
    }
}

/// Receives a split video by video and query by query, so a producer (the synthetic generator, a feature
/// folder) never holds the whole split: `SplitShardWriter` streams it into shards, `MemorySplitBuilder` keeps
/// it (small sets and tests).
public protocol SplitSink {
    /// `rows` is `[clips * (featureDim + tef)]`; `clipScene` (synthetic data) the scene of every clip.
    mutating func addVideo(vid: String, duration: Double, rows: [Float], clipScene: [Int32]?) throws
    mutating func addQuery(_ query: QueryRecord) throws
}

/// Builds a `MomentSplit` in memory.
public struct MemorySplitBuilder: SplitSink {
    public let name: String
    var vids: [String] = [], durations: [Double] = [], features: [Float] = [], clipScene: [Int32]?
    var qids: [String] = [], texts: [String] = [], videoIndex: [Int] = [], tokens: [Float] = []
    var windows: [[[Double]]] = [], saliency: [Int32] = [], relevant: [UInt8] = [], clipOffsets = [0]
    var eventType: [Int]?, distractorType: [Int]?, distractorWindows: [[Double]]?

    public init(name: String) { self.name = name }

    public mutating func addVideo(vid: String, duration: Double, rows: [Float], clipScene: [Int32]?) throws {
        vids.append(vid)
        durations.append(duration)
        features += rows
        pendingRows.append(rows.count)
        if let clipScene { self.clipScene = (self.clipScene ?? []) + clipScene }
    }

    /// Row counts are only known once the width is (`finish`), so the raw value counts are kept until then.
    var pendingRows: [Int] = []

    public mutating func addQuery(_ q: QueryRecord) throws {
        qids.append(q.qid)
        texts.append(q.text)
        videoIndex.append(q.videoIndex)
        tokens += q.tokens
        pendingTokens.append(q.tokens.count)
        windows.append(q.windows)
        saliency += q.saliency
        relevant += q.relevant
        clipOffsets.append(clipOffsets.last! + q.relevant.count)
        if let e = q.eventType { eventType = (eventType ?? []) + [e] }
        if let e = q.distractorType { distractorType = (distractorType ?? []) + [e] }
        if let w = q.distractorWindow { distractorWindows = (distractorWindows ?? []) + [w] }
    }

    var pendingTokens: [Int] = []

    public func finish(_ info: SplitInfo) -> MomentSplit {
        let dim = info.featureDim + (info.tef ? 2 : 0)
        var offsets = [0]
        for n in pendingRows { offsets.append(offsets.last! + n / max(1, dim)) }
        var tokenOffsets = [0]
        for n in pendingTokens { tokenOffsets.append(tokenOffsets.last! + n / max(1, info.textDim)) }
        let videos = VideoSet(vids: vids, durations: durations, clipLength: info.clipLength, featureDim: info.featureDim, tef: info.tef,
                              features: features, offsets: offsets, clipScene: clipScene, sceneVectors: info.sceneVectors,
                              sceneNoise: info.sceneNoise)
        let queries = QuerySet(qids: qids, texts: texts, videoIndex: videoIndex, textDim: info.textDim, tokens: tokens,
                               tokenOffsets: tokenOffsets, windows: windows, hasSaliency: info.hasSaliency, saliency: saliency,
                               relevant: relevant, clipOffsets: clipOffsets, eventType: eventType, distractorType: distractorType,
                               distractorWindows: distractorWindows)
        return MomentSplit(name: name, videos: videos, queries: queries)
    }
}

/// Streams a split into `SPLIT.videos.tshard` and `SPLIT.queries.tshard` (format v2, one chunk per video and
/// per query), in memory that does not grow with the number of records beyond their ids and annotations.
public final class SplitShardWriter: SplitSink {
    public let split: String
    let params: JSONValue
    let videos: ShardStreamWriter
    let queries: ShardStreamWriter
    var vids: [JSONValue] = [], durations: [JSONValue] = [], videoOffsets: [Int64] = [0], clipScene: [Int32]?
    var qids: [JSONValue] = [], texts: [JSONValue] = [], windows: [JSONValue] = [], videoIndex: [Int32] = []
    var tokenCounts: [Int] = [], clipOffsets: [Int64] = [0]
    var eventType: [JSONValue]?, distractorType: [JSONValue]?, distractorWindows: [JSONValue]?
    var rowWidth = 0, textWidth = 0

    public init(split: String, videos: URL, queries: URL, params: JSONValue) throws {
        self.split = split
        self.params = params
        self.videos = try ShardStreamWriter(url: videos)
        self.queries = try ShardStreamWriter(url: queries)
    }

    public func addVideo(vid: String, duration: Double, rows: [Float], clipScene: [Int32]?) throws {
        guard rowWidth > 0 else { throw DatasetError("\(videos.url.path): the row width must be set before the first video") }
        try videos.append("features", rows, rowShape: [rowWidth])
        vids.append(.string(vid))
        durations.append(.number(duration))
        videoOffsets.append(videoOffsets.last! + Int64(rows.count / rowWidth))
        if let clipScene { self.clipScene = (self.clipScene ?? []) + clipScene }
    }

    /// The width of every video row (feature dims plus tef) and of every token row; set before the first record.
    public func setWidths(video: Int, text: Int) {
        rowWidth = video
        textWidth = text
    }

    public func addQuery(_ q: QueryRecord) throws {
        guard textWidth > 0 else { throw DatasetError("\(queries.url.path): the token width must be set before the first query") }
        try queries.append("tokens", q.tokens, rowShape: [textWidth])
        try queries.append("saliency", q.saliency, rowShape: [3])
        try queries.append("relevant", q.relevant, rowShape: [])
        qids.append(.string(q.qid))
        texts.append(.string(q.text))
        windows.append(.array(q.windows.map { .array($0.map { .number($0) }) }))
        videoIndex.append(Int32(q.videoIndex))
        tokenCounts.append(q.tokens.count / textWidth)
        clipOffsets.append(clipOffsets.last! + Int64(q.relevant.count))
        if let e = q.eventType { eventType = (eventType ?? []) + [.number(Double(e))] }
        if let e = q.distractorType { distractorType = (distractorType ?? []) + [.number(Double(e))] }
        if let w = q.distractorWindow { distractorWindows = (distractorWindows ?? []) + [.array(w.map { .number($0) })] }
    }

    /// Writes the per-split tensors and meta and closes both shards.
    @discardableResult
    public func finish(_ info: SplitInfo) throws -> (videos: ShardSummary, queries: ShardSummary) {
        let dim = info.featureDim + (info.tef ? 2 : 0)
        try videos.declare("features", dtype: .f32, rowShape: [dim])
        try videos.append("features" + Ragged.offsetsSuffix, videoOffsets, rowShape: [])
        var vmeta: [String: JSONValue] = [
            "kind": "videos", "split": .string(split), "vids": .array(vids), "durations": .array(durations),
            "clip_length": .number(info.clipLength), "feature_dim": .number(Double(info.featureDim)), "tef": .bool(info.tef),
            "params": params,
        ]
        if let clipScene { try videos.append("clip_scene", clipScene, rowShape: []) }
        if let s = info.sceneVectors {
            try videos.append("scene_vectors", s, rowShape: [info.featureDim])
            vmeta["scenes"] = .number(Double(s.count / max(1, info.featureDim)))
        }
        if let noise = info.sceneNoise { vmeta["scene_noise"] = .number(Double(noise)) }
        videos.meta = .object(vmeta)

        try queries.declare("tokens", dtype: .f32, rowShape: [info.textDim])
        try queries.declare("saliency", dtype: .i32, rowShape: [3])
        try queries.declare("relevant", dtype: .u8, rowShape: [])
        var tokenOffsets: [Int64] = [0]
        for n in tokenCounts { tokenOffsets.append(tokenOffsets.last! + Int64(n)) }
        try queries.append("tokens" + Ragged.offsetsSuffix, tokenOffsets, rowShape: [])
        try queries.append("video_index", videoIndex, rowShape: [])
        try queries.append("clip_offsets", clipOffsets, rowShape: [])
        var qmeta: [String: JSONValue] = [
            "kind": "queries", "split": .string(split), "qids": .array(qids), "texts": .array(texts), "windows": .array(windows),
            "has_saliency": .bool(info.hasSaliency), "params": params,
        ]
        if let eventType { qmeta["event_type"] = .array(eventType) }
        if let distractorType { qmeta["distractor_type"] = .array(distractorType) }
        if let distractorWindows { qmeta["distractor_windows"] = .array(distractorWindows) }
        queries.meta = .object(qmeta)
        return (try videos.finish(), try queries.finish())
    }

    /// Drops both unfinished shards.
    public func abandon() {
        videos.abandon()
        queries.abandon()
    }
}

/// Reading a split's videos and queries from shards (`SPLIT.videos.tshard`, `SPLIT.queries.tshard`), the
/// format every stage after feature-ingest reads. Features and tokens stay in the file and are read one
/// record at a time; ids and annotations are loaded.
public enum DatasetShards {
    /// Writes a split held in memory (tests, small sets).
    public static func write(_ split: MomentSplit, videos: URL, queries: URL, params: JSONValue) throws -> (videos: ShardSummary, queries: ShardSummary) {
        let w = try SplitShardWriter(split: split.name, videos: videos, queries: queries, params: params)
        w.setWidths(video: split.videos.dim, text: split.queries.textDim)
        let v = split.videos, q = split.queries
        for i in 0..<v.count {
            try w.addVideo(vid: v.vids[i], duration: v.durations[i], rows: try v.clips(i),
                           clipScene: v.clipScene.map { Array($0[v.offsets[i]..<v.offsets[i + 1]]) })
        }
        for i in 0..<q.count {
            let rows = q.clipOffsets[i]..<q.clipOffsets[i + 1]
            try w.addQuery(QueryRecord(qid: q.qids[i], text: q.texts[i], videoIndex: q.videoIndex[i], tokens: try q.tokens(i),
                                       windows: q.windows[i], saliency: Array(q.saliency[(rows.lowerBound * 3)..<(rows.upperBound * 3)]),
                                       relevant: Array(q.relevant[rows]), eventType: q.eventType?[i], distractorType: q.distractorType?[i],
                                       distractorWindow: q.distractorWindows?[i]))
        }
        return try w.finish(SplitInfo(clipLength: v.clipLength, featureDim: v.featureDim, tef: v.tef, textDim: q.textDim,
                                      hasSaliency: q.hasSaliency, sceneVectors: v.sceneVectors, sceneNoise: v.sceneNoise))
    }

    public static func readVideos(_ url: URL, cacheBytes: Int = ShardRows.defaultCacheBytes) throws -> VideoSet {
        let r = try ShardReader(url: url)
        let file = url.path
        func bad(_ what: String) -> DatasetError { DatasetError("\(file): \(what)") }
        guard r.meta["kind"]?.stringValue == "videos" else {
            if r.meta["kind"]?.stringValue == "synthesized-videos" {
                throw bad("synthesized videos hold provenance, not features: read them with their training split")
            }
            throw bad("not a videos shard (meta.kind is not \"videos\")")
        }
        let (vids, durations, clipLength, featureDim, tef) = try header(r, bad)
        let offsets = try r.readOffsets("features").map { Int($0) }
        let shape = try r.info("features").shape
        guard offsets.count == vids.count + 1 else {
            throw bad("\(vids.count) vids and \(offsets.count - 1) feature records disagree")
        }
        guard shape[1] == featureDim + (tef ? 2 : 0) else { throw bad("features are \(shape[1])-d, meta says \(featureDim) + tef") }
        var set = VideoSet(vids: vids, durations: durations, clipLength: clipLength, featureDim: featureDim, tef: tef,
                           source: try ShardRows(reader: r, tensor: "features", offsets: offsets, width: shape[1], cacheBytes: cacheBytes),
                           offsets: offsets)
        if r.tensors["clip_scene"] != nil {
            set.clipScene = try r.read("clip_scene", as: Int32.self).values
            set.sceneVectors = try r.read("scene_vectors", as: Float.self).values
            set.sceneNoise = r.meta["scene_noise"]?.doubleValue.map(Float.init)
            guard set.clipScene!.count == offsets.last!, set.sceneVectors!.count % max(1, featureDim) == 0,
                  set.clipScene!.allSatisfy({ $0 >= 0 && Int($0) < set.sceneVectors!.count / max(1, featureDim) })
            else { throw bad("clip_scene/scene_vectors disagree with the features") }
        }
        return set
    }

    static func header(_ r: ShardReader, _ bad: (String) -> DatasetError) throws
        -> (vids: [String], durations: [Double], clipLength: Double, featureDim: Int, tef: Bool) {
        guard let vids = r.meta["vids"]?.arrayValue?.compactMap(\.stringValue),
              let durations = r.meta["durations"]?.arrayValue?.compactMap(\.doubleValue),
              let clipLength = r.meta["clip_length"]?.doubleValue,
              let featureDim = r.meta["feature_dim"]?.intValue,
              let tef = r.meta["tef"]?.boolValue
        else { throw bad("meta lacks vids/durations/clip_length/feature_dim/tef") }
        guard vids.count == durations.count else { throw bad("\(vids.count) vids and \(durations.count) durations disagree") }
        return (vids, durations, clipLength, featureDim, tef)
    }

    public static func readQueries(_ url: URL, videos: VideoSet) throws -> QuerySet {
        let r = try ShardReader(url: url)
        let file = url.path
        func bad(_ what: String) -> DatasetError { DatasetError("\(file): \(what)") }
        guard r.meta["kind"]?.stringValue == "queries" else { throw bad("not a queries shard (meta.kind is not \"queries\")") }
        let tokenOffsets = try r.readOffsets("tokens").map { Int($0) }
        let textDim = try r.info("tokens").shape[1]
        let source = try ShardRows(reader: r, tensor: "tokens", offsets: tokenOffsets, width: textDim)
        return try annotations(r, tokenSource: source, tokenOffsets: tokenOffsets, textDim: textDim, videos: videos, bad)
    }

    /// Ids, windows, saliency and the synthetic labels of a queries shard (every kind).
    static func annotations(_ r: ShardReader, tokenSource: RowSource, tokenOffsets: [Int], textDim: Int, videos: VideoSet,
                            _ bad: (String) -> DatasetError) throws -> QuerySet {
        guard let qids = r.meta["qids"]?.arrayValue?.compactMap(\.stringValue),
              let texts = r.meta["texts"]?.arrayValue?.compactMap(\.stringValue),
              let windowsJSON = r.meta["windows"]?.arrayValue,
              let hasSaliency = r.meta["has_saliency"]?.boolValue
        else { throw bad("meta lacks qids/texts/windows/has_saliency") }
        let windows = windowsJSON.map { $0.arrayValue?.map { $0.arrayValue?.compactMap(\.doubleValue) ?? [] } ?? [] }
        let videoIndex = try r.read("video_index", as: Int32.self).values.map(Int.init)
        let saliency = try r.read("saliency", as: Int32.self).values
        let relevant = try r.read("relevant", as: UInt8.self).values
        let clipOffsets = try r.read("clip_offsets", as: Int64.self).values.map { Int($0) }
        let n = qids.count
        guard texts.count == n, windows.count == n, videoIndex.count == n, tokenOffsets.count == n + 1, clipOffsets.count == n + 1 else {
            throw bad("per-query tensors and meta disagree on the number of queries (\(n))")
        }
        guard clipOffsets.first == 0, zip(clipOffsets, clipOffsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw bad("clip_offsets do not start at 0 and grow")
        }
        for q in 0..<n {
            let v = videoIndex[q]
            guard v >= 0 && v < videos.count else { throw bad("query \(qids[q]) points at video \(v), the split has \(videos.count)") }
            guard clipOffsets[q + 1] - clipOffsets[q] == videos.length(v) else {
                throw bad("query \(qids[q]): saliency rows do not match its video's \(videos.length(v)) clips")
            }
            guard windows[q].allSatisfy({ $0.count == 2 && $0[0].isFinite && $0[1].isFinite }) else {
                throw bad("query \(qids[q]): a window is not two finite numbers")
            }
        }
        guard saliency.count == clipOffsets[n] * 3, relevant.count == clipOffsets[n] else { throw bad("saliency/relevant sizes disagree") }
        func ints(_ key: String) -> [Int]? { r.meta[key]?.arrayValue?.compactMap(\.intValue) }
        let distractorWindows = r.meta["distractor_windows"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.doubleValue) ?? [] }
        return QuerySet(qids: qids, texts: texts, videoIndex: videoIndex, textDim: textDim, tokenSource: tokenSource,
                        tokenOffsets: tokenOffsets, windows: windows, hasSaliency: hasSaliency,
                        saliency: saliency, relevant: relevant, clipOffsets: clipOffsets,
                        eventType: ints("event_type"), distractorType: ints("distractor_type"),
                        distractorWindows: distractorWindows)
    }

    public static func readSplit(videos: URL, queries: URL, name: String) throws -> MomentSplit {
        let v = try readVideos(videos)
        return MomentSplit(name: name, videos: v, queries: try readQueries(queries, videos: v))
    }

    /// The shards of synthesized samples: provenance instead of features (`synthesized.videos.tshard`: every
    /// clip's source video and clip; `synthesized.queries.tshard`: windows, saliency and the source query,
    /// whose tokens it shares). Both record the identity of the split they were made from.
    public static func synthesizedShards(_ out: VideoSynthesizer.Output, base: MomentSplit, params: JSONValue) throws
        -> (videos: ShardWriter, queries: ShardWriter) {
        let v = out.split.videos, q = out.split.queries
        let identity: [String: JSONValue] = ["base_videos": .string(videoIdentity(base.videos)),
                                             "base_queries": .string(queryIdentity(base.queries))]
        var vmeta: [String: JSONValue] = [
            "kind": "synthesized-videos", "split": "synthesized", "vids": .array(v.vids.map { .string($0) }),
            "durations": .array(v.durations.map { .number($0) }), "clip_length": .number(v.clipLength),
            "feature_dim": .number(Double(v.featureDim)), "tef": .bool(v.tef), "params": params,
        ]
        vmeta.merge(identity) { a, _ in a }
        var videos = ShardWriter(meta: .object(vmeta))
        try videos.add("provenance", out.provenance, shape: [out.provenance.count / 2, 2])
        try videos.add("provenance" + Ragged.offsetsSuffix, v.offsets.map(Int64.init), shape: [v.offsets.count])
        try videos.add("source_query", out.sourceQuery, shape: [out.sourceQuery.count])
        try videos.add("focus_video", out.focusVideo, shape: [out.focusVideo.count])
        try videos.add("partner_video", out.partnerVideo, shape: [out.partnerVideo.count])

        var qmeta: [String: JSONValue] = [
            "kind": "synthesized-queries", "split": "synthesized", "qids": .array(q.qids.map { .string($0) }),
            "texts": .array(q.texts.map { .string($0) }),
            "windows": .array(q.windows.map { .array($0.map { .array($0.map { .number($0) }) }) }),
            "has_saliency": .bool(q.hasSaliency), "params": params,
        ]
        qmeta.merge(identity) { a, _ in a }
        if let e = q.eventType { qmeta["event_type"] = .array(e.map { .number(Double($0)) }) }
        var queries = ShardWriter(meta: .object(qmeta))
        try queries.add("source_query", out.sourceQuery, shape: [out.sourceQuery.count])
        try queries.add("video_index", q.videoIndex.map(Int32.init), shape: [q.count])
        try queries.add("saliency", q.saliency, shape: [q.saliency.count / 3, 3])
        try queries.add("relevant", q.relevant, shape: [q.relevant.count])
        try queries.add("clip_offsets", q.clipOffsets.map(Int64.init), shape: [q.clipOffsets.count])
        return (videos, queries)
    }

    /// Synthesized samples read back over the split they were made from: their clips are gathered from `base`'s
    /// videos and their tokens are `base`'s queries', on demand. Returns the samples and each one's source query.
    public static func readSynthesized(videos: URL, queries: URL, base: MomentSplit) throws -> (split: MomentSplit, sourceQuery: [Int]) {
        let rv = try ShardReader(url: videos), rq = try ShardReader(url: queries)
        func bad(_ url: URL) -> (String) -> DatasetError { { DatasetError("\(url.path): \($0)") } }
        guard rv.meta["kind"]?.stringValue == "synthesized-videos" else {
            throw bad(videos)("not a synthesized videos shard (meta.kind is not \"synthesized-videos\"; it holds provenance since format v2: rerun video-synthesis)")
        }
        guard rq.meta["kind"]?.stringValue == "synthesized-queries" else { throw bad(queries)("not a synthesized queries shard") }
        for (r, url) in [(rv, videos), (rq, queries)] {
            guard r.meta["base_videos"]?.stringValue == videoIdentity(base.videos),
                  r.meta["base_queries"]?.stringValue == queryIdentity(base.queries) else {
                throw bad(url)("was synthesized from another training split than the one given")
            }
        }
        let (vids, durations, clipLength, featureDim, tef) = try header(rv, bad(videos))
        guard clipLength == base.videos.clipLength, featureDim == base.videos.featureDim, tef == base.videos.tef else {
            throw bad(videos)("clip length, feature dims or tef differ from the training split's")
        }
        let provenance = try rv.read("provenance", as: Int32.self).values
        let offsets = try rv.read("provenance" + Ragged.offsetsSuffix, as: Int64.self).values.map { Int($0) }
        guard offsets.count == vids.count + 1, offsets.first == 0, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
              offsets.last! * 2 == provenance.count else {
            throw bad(videos)("provenance offsets disagree with the \(vids.count) samples and \(provenance.count / 2) clips")
        }
        for c in 0..<(provenance.count / 2) {
            let v = Int(provenance[2 * c]), clip = Int(provenance[2 * c + 1])
            guard v >= 0, v < base.videos.count, clip >= 0, clip < base.videos.length(v) else {
                throw bad(videos)("synthesized clip \(c) points at clip \(clip) of video \(v), outside the training split")
            }
        }
        let sourceQuery = try rq.read("source_query", as: Int32.self).values.map(Int.init)
        guard sourceQuery.count == vids.count, sourceQuery.allSatisfy({ $0 >= 0 && $0 < base.queries.count }) else {
            throw bad(queries)("source queries disagree with the samples or the training split")
        }
        let set = VideoSet(vids: vids, durations: durations, clipLength: clipLength, featureDim: featureDim, tef: tef,
                           source: GatheredClips(base: base.videos, provenance: provenance, offsets: offsets), offsets: offsets)
        var tokenOffsets = [0]
        for q in sourceQuery { tokenOffsets.append(tokenOffsets.last! + base.queries.tokenCount(q)) }
        let qs = try annotations(rq, tokenSource: PickedRows(base: base.queries.tokenSource, picks: sourceQuery),
                                 tokenOffsets: tokenOffsets, textDim: base.queries.textDim, videos: set, bad(queries))
        return (MomentSplit(name: "synthesized", videos: set, queries: qs), sourceQuery)
    }

    /// An identity of a split's queries (ids and token counts).
    public static func queryIdentity(_ q: QuerySet) -> String {
        var h = SHA256()
        for (i, qid) in q.qids.enumerated() { h.update(data: Data("\(qid)\t\(q.tokenCount(i))\n".utf8)) }
        return Hex.encode(h.finalize())
    }

    /// An identity of a split's videos (their ids and clip counts), recorded by synthesized shards so that they
    /// are only ever gathered from the split they were made from.
    public static func videoIdentity(_ v: VideoSet) -> String {
        var h = SHA256()
        for (i, vid) in v.vids.enumerated() { h.update(data: Data("\(vid)\t\(v.length(i))\n".utf8)) }
        return Hex.encode(h.finalize())
    }
}

/// A data problem, naming the file and record.
public struct DatasetError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
