import Foundation
import Shards

/// Reading and writing a split's videos and queries as shards (`SPLIT.videos.tshard`,
/// `SPLIT.queries.tshard`), the format every stage after feature-ingest reads.
public enum DatasetShards {
    public static func videosShard(_ v: VideoSet, split: String, params: JSONValue) throws -> ShardWriter {
        var meta: [String: JSONValue] = [
            "kind": "videos", "split": .string(split), "vids": .array(v.vids.map { .string($0) }),
            "durations": .array(v.durations.map { .number($0) }), "clip_length": .number(v.clipLength),
            "feature_dim": .number(Double(v.featureDim)), "tef": .bool(v.tef), "params": params,
        ]
        if let scenes = v.sceneVectors { meta["scenes"] = .number(Double(scenes.count / max(1, v.featureDim))) }
        if let noise = v.sceneNoise { meta["scene_noise"] = .number(Double(noise)) }
        var w = ShardWriter(meta: .object(meta))
        try w.addRagged("features", values: v.features, offsets: v.offsets.map(Int64.init), dim: v.dim)
        if let s = v.clipScene { try w.add("clip_scene", s, shape: [s.count]) }
        if let s = v.sceneVectors { try w.add("scene_vectors", s, shape: [s.count / v.featureDim, v.featureDim]) }
        return w
    }

    public static func queriesShard(_ q: QuerySet, split: String, params: JSONValue) throws -> ShardWriter {
        var meta: [String: JSONValue] = [
            "kind": "queries", "split": .string(split), "qids": .array(q.qids.map { .string($0) }),
            "texts": .array(q.texts.map { .string($0) }),
            "windows": .array(q.windows.map { .array($0.map { .array($0.map { .number($0) }) }) }),
            "has_saliency": .bool(q.hasSaliency), "params": params,
        ]
        if let e = q.eventType { meta["event_type"] = .array(e.map { .number(Double($0)) }) }
        if let e = q.distractorType { meta["distractor_type"] = .array(e.map { .number(Double($0)) }) }
        if let w = q.distractorWindows { meta["distractor_windows"] = .array(w.map { .array($0.map { .number($0) }) }) }
        var w = ShardWriter(meta: .object(meta))
        try w.addRagged("tokens", values: q.tokens, offsets: q.tokenOffsets.map(Int64.init), dim: q.textDim)
        try w.add("video_index", q.videoIndex.map(Int32.init), shape: [q.count])
        try w.add("saliency", q.saliency, shape: [q.saliency.count / 3, 3])
        try w.add("relevant", q.relevant, shape: [q.relevant.count])
        try w.add("clip_offsets", q.clipOffsets.map(Int64.init), shape: [q.clipOffsets.count])
        return w
    }

    public static func readVideos(_ url: URL) throws -> VideoSet {
        let r = try ShardReader(url: url)
        let file = url.path
        func bad(_ what: String) -> DatasetError { DatasetError("\(file): \(what)") }
        guard r.meta["kind"]?.stringValue == "videos" else { throw bad("not a videos shard (meta.kind is not \"videos\")") }
        guard let vids = r.meta["vids"]?.arrayValue?.compactMap(\.stringValue),
              let durations = r.meta["durations"]?.arrayValue?.compactMap(\.doubleValue),
              let clipLength = r.meta["clip_length"]?.doubleValue,
              let featureDim = r.meta["feature_dim"]?.intValue,
              let tef = r.meta["tef"]?.boolValue
        else { throw bad("meta lacks vids/durations/clip_length/feature_dim/tef") }
        let (features, dim, offsets) = try r.readRagged("features")
        guard vids.count == durations.count, offsets.count == vids.count + 1 else {
            throw bad("\(vids.count) vids, \(durations.count) durations and \(offsets.count - 1) feature rows disagree")
        }
        guard dim == featureDim + (tef ? 2 : 0) else { throw bad("features are \(dim)-d, meta says \(featureDim) + tef") }
        var set = VideoSet(vids: vids, durations: durations, clipLength: clipLength, featureDim: featureDim, tef: tef,
                           features: features, offsets: offsets.map { Int($0) })
        if r.tensors["clip_scene"] != nil {
            set.clipScene = try r.read("clip_scene", as: Int32.self).values
            set.sceneVectors = try r.read("scene_vectors", as: Float.self).values
            set.sceneNoise = r.meta["scene_noise"]?.doubleValue.map(Float.init)
        }
        return set
    }

    public static func readQueries(_ url: URL, videos: VideoSet) throws -> QuerySet {
        let r = try ShardReader(url: url)
        let file = url.path
        func bad(_ what: String) -> DatasetError { DatasetError("\(file): \(what)") }
        guard r.meta["kind"]?.stringValue == "queries" else { throw bad("not a queries shard (meta.kind is not \"queries\")") }
        guard let qids = r.meta["qids"]?.arrayValue?.compactMap(\.stringValue),
              let texts = r.meta["texts"]?.arrayValue?.compactMap(\.stringValue),
              let windowsJSON = r.meta["windows"]?.arrayValue,
              let hasSaliency = r.meta["has_saliency"]?.boolValue
        else { throw bad("meta lacks qids/texts/windows/has_saliency") }
        let windows = windowsJSON.map { $0.arrayValue?.map { $0.arrayValue?.compactMap(\.doubleValue) ?? [] } ?? [] }
        let (tokens, textDim, tokenOffsets) = try r.readRagged("tokens")
        let videoIndex = try r.read("video_index", as: Int32.self).values.map(Int.init)
        let saliency = try r.read("saliency", as: Int32.self).values
        let relevant = try r.read("relevant", as: UInt8.self).values
        let clipOffsets = try r.read("clip_offsets", as: Int64.self).values.map { Int($0) }
        let n = qids.count
        guard texts.count == n, windows.count == n, videoIndex.count == n, tokenOffsets.count == n + 1, clipOffsets.count == n + 1 else {
            throw bad("per-query tensors and meta disagree on the number of queries (\(n))")
        }
        for q in 0..<n {
            let v = videoIndex[q]
            guard v >= 0 && v < videos.count else { throw bad("query \(qids[q]) points at video \(v), the split has \(videos.count)") }
            guard clipOffsets[q + 1] - clipOffsets[q] == videos.length(v) else {
                throw bad("query \(qids[q]): saliency rows do not match its video's \(videos.length(v)) clips")
            }
        }
        guard saliency.count == clipOffsets[n] * 3, relevant.count == clipOffsets[n] else { throw bad("saliency/relevant sizes disagree") }
        func ints(_ key: String) -> [Int]? { r.meta[key]?.arrayValue?.compactMap(\.intValue) }
        let distractorWindows = r.meta["distractor_windows"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.doubleValue) ?? [] }
        return QuerySet(qids: qids, texts: texts, videoIndex: videoIndex, textDim: textDim, tokens: tokens,
                        tokenOffsets: tokenOffsets.map { Int($0) }, windows: windows, hasSaliency: hasSaliency,
                        saliency: saliency, relevant: relevant, clipOffsets: clipOffsets,
                        eventType: ints("event_type"), distractorType: ints("distractor_type"),
                        distractorWindows: distractorWindows)
    }

    public static func readSplit(videos: URL, queries: URL, name: String) throws -> MomentSplit {
        let v = try readVideos(videos)
        return MomentSplit(name: name, videos: v, queries: try readQueries(queries, videos: v))
    }
}

/// A data problem, naming the file and record.
public struct DatasetError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
